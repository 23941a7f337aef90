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

from syncd import logs, registry
from syncd.engine import Engine
from syncd.settings import Config
from syncd.state.store import Store

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

SYSTEM_CONFIG = Path("/etc/syncd/syncd.yaml")
"""Where the service's configuration is installed (config/systemd/syncd.service)."""


def default_config(system: Path = SYSTEM_CONFIG) -> Path:
    """The configuration a command reads without --config: SYNCD_CONFIG (read by the
    option itself), then ``/etc/syncd/syncd.yaml`` when it exists (the service's, so that
    an operator's shell reads the same store as the daemon), then ``config/syncd.yaml``."""
    return system if system.is_file() else Path("config/syncd.yaml")


ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="SYNCD_CONFIG",
        help="Path to syncd.yaml (default: $SYNCD_CONFIG, else /etc/syncd/syncd.yaml if it"
        " exists, else config/syncd.yaml).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def _log_level(value: str | None) -> str | None:
    if value is not None and value.lower() not in logs.LEVELS:
        raise typer.BadParameter(f"{value!r}: one of {', '.join(logs.LEVELS)}")
    return value.lower() if value else None


LogLevelOption = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        callback=_log_level,
        help=f"Log lines from this level up: {', '.join(logs.LEVELS)} (default: log_level"
        " in syncd.yaml, else the command's own).",
        show_default=False,
    ),
]
DEFAULT_CONFIG = default_config()


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
