"""What every command module shares: the consoles, the common options, JSON output, and
opening the store a command only reads (``existing_store``: exit 3 when it is missing)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from syncd import logs, registry
from syncd.config.settings import Config
from syncd.errors import ConfigProblem, StoreNotReadyError
from syncd.state import url as store_url
from syncd.state.store import Store
from syncd.sync.engine import Engine

# no emoji codes: "syncd.yaml:100:" is a file and line, not ":100:" (a 💯)
console = Console(soft_wrap=True, emoji=False)
err = Console(stderr=True, soft_wrap=True, emoji=False)

SYSTEM_CONFIG = Path("/etc/syncd/syncd.yaml")
"""Where the service's configuration is installed (config/systemd/syncd.service)."""


def default_config(system: Path = SYSTEM_CONFIG) -> Path:
    """The configuration a command reads without --config: SYNCD_CONFIG (read by the
    option itself), then ``/etc/syncd/syncd.yaml`` when it exists (the service's, so that
    an operator's shell reads the same store as the daemon), then ``config/syncd.yaml``."""
    return system if system.is_file() else Path("config/syncd.yaml")


STORE_NOT_READY = 3
"""Exit code of a command that only reads the store when there is no store to read (no
file, no syncd schema, another revision): nothing was created; `syncd migrate` fixes it."""

_CONFIG_SOURCES: dict[str, str] = {}
"""Each configuration path a command was given, and where it came from (``config_read``)."""


def _remember_source(ctx: typer.Context, param: typer.CallbackParam, value: Path) -> Path:
    """Note whether the path came from --config, $SYNCD_CONFIG or the default."""
    source = ctx.get_parameter_source(param.name or "config")
    name = source.name if source is not None else "DEFAULT"  # typer's own click enum
    if name == "COMMANDLINE":
        _CONFIG_SOURCES[str(value)] = "from --config"
    elif name == "ENVIRONMENT":
        _CONFIG_SOURCES[str(value)] = "from $SYNCD_CONFIG"
    elif str(value) not in _CONFIG_SOURCES:
        _CONFIG_SOURCES[str(value)] = (
            f"the default: {SYSTEM_CONFIG}, which exists"
            if value == SYSTEM_CONFIG
            else f"the default: no --config, no $SYNCD_CONFIG, no {SYSTEM_CONFIG}"
        )
    return value


def config_read(path: Path | str) -> str:
    """``/etc/syncd/syncd.yaml (from $SYNCD_CONFIG)``: the file and who chose it."""
    source = _CONFIG_SOURCES.get(str(path))
    absolute = Path(path).absolute()
    return f"{absolute} ({source})" if source else str(absolute)


def missing_config(problem: ConfigProblem) -> str | None:
    """``no config at X (from $SYNCD_CONFIG)`` when ``problem`` is that a configuration
    file given to a command does not exist; None for any other problem."""
    if problem.key != "(file)" or problem.file not in _CONFIG_SOURCES:
        return None
    if Path(problem.file).exists():
        return None
    return (
        f"no config at {config_read(problem.file)}: give --config PATH or set SYNCD_CONFIG"
        f" (the service reads {SYSTEM_CONFIG})"
    )


ConfigOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar="SYNCD_CONFIG",
        callback=_remember_source,
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
def existing_store(cfg: Config) -> Iterator[Store]:
    """The store ``cfg`` names, opened as it is (``Store.existing``): a missing store, or
    one not at this syncd's schema, is said on stderr with the configuration that named
    it, and the command exits ``STORE_NOT_READY`` (3) having created nothing."""
    try:
        store = Store.existing(cfg.store_url)
    except StoreNotReadyError as error:
        err.print(f"[red]error:[/red] {escape(str(error))}")
        err.print(
            f"  the store {escape(store_url.shown(cfg.store_url))} is named by"
            f" {escape(cfg.store_source)}"
        )
        err.print(f"  configuration read: {escape(config_read(cfg.path))}")
        err.print(f"  {escape(error.fix)}")
        raise typer.Exit(STORE_NOT_READY) from None
    with store:
        yield store


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
