"""The end-to-end world: both emulators, the real clients, one store, one engine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from sqlalchemy import func, select

from syncd import registry
from syncd.config.load import load_config
from syncd.config.settings import Config
from syncd.harness import sandbox
from syncd.retry import RetryPolicy
from syncd.state.store import Store
from syncd.state.tables import links
from syncd.sync.engine import Engine


@dataclass
class World:
    box: sandbox.Sandbox
    config: Config
    store: Store
    engine: Engine
    sleeps: list[float]

    @property
    def hubspot(self) -> Any:
        return self.box.emulators["hubspot"]

    @property
    def salesforce(self) -> Any:
        return self.box.emulators["salesforce"]

    def cycle(self, **kwargs: Any) -> Any:
        return self.engine.run_once(**kwargs)

    def contact(self, email: str) -> dict[str, Any]:
        found = [c for c in self.hubspot.contacts() if _props(c).get("email", "").lower() == email]
        assert len(found) == 1, f"{len(found)} HubSpot contacts with {email}"
        return _props(found[0])

    def person(self, email: str, kind: str = "Lead") -> dict[str, Any]:
        found = [
            r
            for r in self.salesforce.records(kind)
            if str(r.get("Email") or "").lower() == email and not r.get("IsDeleted")
        ]
        assert len(found) == 1, f"{len(found)} Salesforce {kind}s with {email}"
        return found[0]

    def link_count(self) -> int:
        with self.store.engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(links)) or 0)


def _props(contact: dict[str, Any]) -> dict[str, Any]:
    props = dict(contact.get("properties", contact))
    props.setdefault("id", contact.get("id"))
    return props


def make_world(
    tmp_path: Path,
    store_url: str,
    hubspot: dict[str, Any] | None = None,
    salesforce: dict[str, Any] | None = None,
) -> Iterator[World]:
    """The world; ``hubspot`` and ``salesforce`` override settings of their sections of
    ``systems`` (``{"auth": "oauth"}``)."""
    box = sandbox.start(tmp_path / "config", sample=False, store=store_url)
    if hubspot or salesforce:
        raw = YAML(typ="safe").load(box.config_path.read_text("utf-8"))
        raw["systems"]["hubspot"].update(hubspot or {})
        raw["systems"]["salesforce"].update(salesforce or {})
        with box.config_path.open("w", encoding="utf-8") as out:
            YAML(typ="safe", pure=True).dump(raw, out)
    sleeps: list[float] = []
    config = load_config(box.config_path)
    store = Store.open(config.store_url)
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=5, sleep=sleeps.append)
    marketing = registry.connector(config, "hubspot", policy)
    crm = registry.connector(config, "salesforce", policy)
    engine = Engine.for_config(config, store, marketing, crm)
    try:
        yield World(box, config, store, engine, sleeps)
    finally:
        marketing.close()
        crm.close()
        store.close()
        box.stop()
