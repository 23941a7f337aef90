"""What every command module shares: the consoles, the common options, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from syncd import registry
from syncd.engine import Engine
from syncd.settings import Config
from syncd.state.store import Store

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to syncd.yaml.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
DEFAULT_CONFIG = Path("config/syncd.yaml")


def dump(value: Any) -> None:
    """Print ``value`` as JSON for machines (datetimes and the like as text)."""
    print(json.dumps(value, default=str, indent=2))


@contextmanager
def connected(config: Config, store: Store) -> Iterator[Engine]:
    """An engine on ``store`` with both systems' connectors, closed afterwards."""
    marketing = registry.connector(config, config.syncd.marketing)
    crm = registry.connector(config, config.syncd.crm)
    try:
        yield Engine.for_config(config, store, marketing, crm)
    finally:
        marketing.close()
        crm.close()


def moment(value: str | None, option: str) -> datetime | None:
    """An ISO date or datetime from an option; without an offset it is UTC."""
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or datetime (2026-05-01 or 2026-05-01T09:30)",
            param_hint=option,
        ) from None
    return found if found.tzinfo else found.replace(tzinfo=UTC)
