"""The daemon's commands: ``syncd run``, ``syncd pause``, ``syncd resume``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from syncd.cli_common import DEFAULT_CONFIG, ConfigOption, JsonOption, console, dump
from syncd.daemon import Daemon
from syncd.settings import OBJECTS, load_config
from syncd.state import control
from syncd.state.store import Store

SystemOption = Annotated[str | None, typer.Option("--system", help="A system, e.g. hubspot.")]
ObjectOption = Annotated[
    str | None, typer.Option("--object", help="An object: company, person or deal.")
]


def run(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """The daemon (systemd runs this): cycles on their cadence while it holds the lease."""
    daemon = Daemon(config)
    daemon.install_signals()
    raise typer.Exit(daemon.run())


def _scope(config_path: Path, system: str | None, obj: str | None) -> tuple[str, str]:
    cfg = load_config(config_path)
    if (system is None) == (obj is None):
        raise typer.BadParameter("name one --system or one --object")
    if system is not None:
        if system not in cfg.syncd.systems:
            raise typer.BadParameter(f"no system {system!r} in syncd.yaml", param_hint="--system")
        return control.scope("system", system), cfg.store_url
    if obj not in OBJECTS:
        raise typer.BadParameter(f"one of {', '.join(OBJECTS)}", param_hint="--object")
    return control.scope("object", str(obj)), cfg.store_url


def pause(
    config: ConfigOption = DEFAULT_CONFIG,
    system: SystemOption = None,
    obj: ObjectOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, for status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Pause a system (no cycle calls it) or an object (its cycles are skipped); kept in
    the store, so that it survives restarts, until `syncd resume`."""
    what, url = _scope(config, system, obj)
    store = Store.open(url)
    try:
        done = control.pause(store, what, datetime.now(UTC), reason)
    finally:
        store.close()
    if as_json:
        dump({"paused": what, "changed": done})
    else:
        console.print(f"{what} paused" if done else f"{what} was paused already")


def resume(
    config: ConfigOption = DEFAULT_CONFIG,
    system: SystemOption = None,
    obj: ObjectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a paused system or object."""
    what, url = _scope(config, system, obj)
    store = Store.open(url)
    try:
        done = control.resume(store, what)
    finally:
        store.close()
    if as_json:
        dump({"resumed": what, "changed": done})
    else:
        console.print(f"{what} resumed" if done else f"{what} was not paused")
