"""The daemon's commands: ``syncd run``, ``syncd pause``, ``syncd resume``."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from syncd import preflight, resync
from syncd.cli_common import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    connected,
    console,
    dump,
    err,
    moment,
)
from syncd.daemon import Daemon
from syncd.settings import OBJECTS, load_config
from syncd.state import control
from syncd.state.store import Store

SystemOption = Annotated[str | None, typer.Option("--system", help="A system, e.g. hubspot.")]
ObjectOption = Annotated[
    str | None, typer.Option("--object", help="An object: company, person or deal.")
]


def run(config: ConfigOption = DEFAULT_CONFIG) -> None:
    """The daemon (systemd runs this): cycles on their cadence while it holds the lease.

    Example:

    $ syncd run -c /etc/syncd/syncd.yaml
    """
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
    the store, so that it survives restarts, until `syncd resume`.

    Example:

    $ syncd pause --system salesforce --reason "org maintenance until 18:00"
    $ syncd pause --object deal
    """
    what, url = _scope(config, system, obj)
    with Store.open(url) as store:
        done = control.pause(store, what, datetime.now(UTC), reason)
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
    """Resume a paused system or object.

    Example:

    $ syncd resume --system salesforce
    """
    what, url = _scope(config, system, obj)
    with Store.open(url) as store:
        done = control.resume(store, what)
    if as_json:
        dump({"resumed": what, "changed": done})
    else:
        console.print(f"{what} resumed" if done else f"{what} was not paused")


def resync_command(
    config: ConfigOption = DEFAULT_CONFIG,
    obj: Annotated[str, typer.Option("--object", help="company, person or deal.")] = "person",
    email: Annotated[list[str] | None, typer.Option("--email", help="A person's email.")] = None,
    record_id: Annotated[
        list[str] | None,
        typer.Option("--id", help="Either system's id, or system:kind:id for one not linked."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="Changed at or after (ISO date).")] = None,
    until: Annotated[str | None, typer.Option(help="Changed before (ISO date).")] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every record of the object.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="Show the requests and results.")] = False,
    wait: Annotated[bool, typer.Option(help="Block until the daemon has run it.")] = False,
    now: Annotated[bool, typer.Option("--now", help="Run it here (no daemon needed).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300,
    as_json: JsonOption = False,
) -> None:
    """Re-read records from both systems and merge them again, ignoring the cursors.

    Records a request and returns; the running daemon drains requests within seconds.

    Example:

    $ syncd resync --email ada@example.com --wait
    $ syncd resync --object deal --since 2026-05-01
    $ syncd resync --list
    """
    cfg = load_config(config)
    with Store.open(cfg.store_url) as store:
        if list_:
            _list_requests(store, as_json)
            return
        selector = {
            "emails": email or [],
            "ids": record_id or [],
            "since": _iso(since, "--since"),
            "until": _iso(until, "--until"),
            "all": everything,
        }
        if resync.is_empty(selector):
            raise typer.BadParameter("name records: --email, --id, --since/--until or --all")
        if obj not in cfg.fields:
            raise typer.BadParameter(
                f"{obj!r} is not an object of fields.yaml", param_hint="--object"
            )
        request = resync.enqueue(store, obj, selector, datetime.now(UTC))
        if now:
            with connected(cfg, store) as engine:
                preflight.gate(cfg, engine)  # a blocking setup problem fails the request
                resync.drain(engine, only=request, quiet=True)  # the answer is printed below
        elif wait:
            _wait(store, request, timeout)
        answer = next(r for r in resync.requests(store, 500) if r["id"] == request)
    if as_json:
        dump(answer)
    elif answer["state"] == resync.QUEUED:
        console.print(f"resync {request} queued: {resync.describe(selector)}")
    else:
        console.print(f"resync {request} {answer['state']}: {_result_text(answer)}")
    if answer["state"] == resync.FAILED:
        raise typer.Exit(1)


def _iso(value: str | None, option: str) -> str | None:
    found = moment(value, option)
    return found.isoformat() if found else None


def _wait(store: Store, request: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = next(r["state"] for r in resync.requests(store, 500) if r["id"] == request)
        if state in (resync.DONE, resync.FAILED):
            return
        time.sleep(0.5)
    raise typer.Exit(_timed_out(request, timeout))


def _timed_out(request: int, timeout: float) -> int:
    err.print(f"resync {request} not run within {timeout:.0f} s: is `syncd run` running?")
    return 1


def _result_text(answer: dict[str, Any]) -> str:
    result = answer.get("result") or {}
    if "error" in result:
        return str(result["error"])
    read = sum((result.get("read") or {}).values())
    written = sum((result.get("created") or {}).values()) + sum(
        (result.get("updated") or {}).values()
    )
    return f"read {read}, wrote {written}, rejected {sum((result.get('rejected') or {}).values())}"


def _list_requests(store: Store, as_json: bool) -> None:
    found = resync.requests(store)
    if as_json:
        dump(found)
        return
    table = Table(title="Resync requests")
    for column in ("id", "object", "records", "state", "queued", "finished", "result"):
        table.add_column(column)
    for r in found:
        table.add_row(
            str(r["id"]),
            r["object"],
            resync.describe(r["selector"]),
            r["state"],
            str(r["created_at"]),
            str(r["finished_at"] or ""),
            _result_text(r) if r["result"] else "",
        )
    console.print(table)
