"""The daemon's commands: ``syncd run``, ``syncd migrate``, ``syncd pause``, ``syncd resume``
and ``syncd resync``. Of them only ``run`` and ``migrate`` create or migrate the store."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from syncd import preflight
from syncd.cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    LogLevelOption,
    config_read,
    connected,
    console,
    dump,
    err,
    existing_store,
    moment,
)
from syncd.config.load import load_config
from syncd.config.settings import OBJECTS, Config
from syncd.daemon.budget import Budgets
from syncd.daemon.lease import current_holder
from syncd.daemon.service import Daemon
from syncd.state import control
from syncd.state import url as store_url
from syncd.state.store import Store, revision_of
from syncd.sync import resync

SystemOption = Annotated[str | None, typer.Option("--system", help="A system, e.g. hubspot.")]
ObjectOption = Annotated[
    str | None, typer.Option("--object", help="An object: company, person or deal.")
]


def run(config: ConfigOption = DEFAULT_CONFIG, log_level: LogLevelOption = None) -> None:
    """The daemon (systemd runs this): cycles on their cadence while it holds the lease.

    Example:

    $ syncd run -c /etc/syncd/syncd.yaml
    """
    daemon = Daemon(config, log_level=log_level)
    daemon.install_signals()
    raise typer.Exit(daemon.run())


def migrate(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Create the store, or bring it to this syncd's schema; print its revision.

    The store is the one the configuration names. `syncd run` and `syncd once` do the same
    at start; no other command creates or changes a store.

    Example:

    $ syncd migrate -c /etc/syncd/syncd.yaml
    """
    cfg = load_config(config)
    before = revision_of(cfg.store_url)
    with Store.open(cfg.store_url) as store:
        after, newest = store.schema_version()
    shown = store_url.shown(cfg.store_url)
    if as_json:
        dump(
            {
                "store": {"url": shown, "from": cfg.store_source},
                "config": config_read(config),
                "before": before,
                "after": after,
                "newest": newest,
            }
        )
        return
    console.print(f"Store: {escape(shown)} (named by {escape(cfg.store_source)})")
    if before == after:
        console.print(f"schema {after}: up to date, nothing to do")
    else:
        console.print(f"schema {before or 'none (a new store)'} -> {after}")


def _scope(config_path: Path, system: str | None, obj: str | None) -> tuple[str, Config]:
    cfg = load_config(config_path)
    if (system is None) == (obj is None):
        raise typer.BadParameter("name one --system or one --object")
    if system is not None:
        if system not in cfg.syncd.systems:
            raise typer.BadParameter(f"no system {system!r} in syncd.yaml", param_hint="--system")
        return control.scope("system", system), cfg
    if obj not in OBJECTS:
        raise typer.BadParameter(f"one of {', '.join(OBJECTS)}", param_hint="--object")
    return control.scope("object", str(obj)), cfg


def pause(
    config: ConfigOption = DEFAULT_CONFIG,
    system: SystemOption = None,
    obj: ObjectOption = None,
    reason: Annotated[str | None, typer.Option(help="Why, for status.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Pause a system or an object until `syncd resume`, across restarts.

    A paused system is called by no cycle; a paused object's cycles are skipped. The pause
    is kept in the store, so the service sees it at once.

    Example:

    $ syncd pause --system salesforce --reason "org maintenance until 18:00"
    $ syncd pause --object deal
    """
    what, cfg = _scope(config, system, obj)
    with existing_store(cfg) as store:
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
    what, cfg = _scope(config, system, obj)
    with existing_store(cfg) as store:
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
    held: Annotated[
        bool, typer.Option("--held", help="Everyone the gate holds back (after changing gate:).")
    ] = False,
    everything: Annotated[bool, typer.Option("--all", help="Every record of the object.")] = False,
    list_: Annotated[bool, typer.Option("--list", help="Show the requests and results.")] = False,
    wait: Annotated[bool, typer.Option(help="Block until the daemon has run it.")] = False,
    now: Annotated[bool, typer.Option("--now", help="Run it here (no daemon needed).")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 300,
    as_json: JsonOption = False,
) -> None:
    """Re-read records from both systems and merge them again, ignoring the cursors.

    Records a request and returns; the running daemon drains requests within seconds
    (without one it waits: --now runs it here). Emails and ids go together; a range or
    --all is a selector of its own. One naming nothing the store knows is refused.

    Example:

    $ syncd resync --email ada@example.com --wait
    $ syncd resync --object deal --since 2026-05-01
    $ syncd resync --held --now
    $ syncd resync --list
    """
    cfg = load_config(config)
    selector = {
        "emails": email or [],
        "ids": record_id or [],
        "since": _iso(since, "--since"),
        "until": _iso(until, "--until"),
        "held": held,
        "all": everything,
    }
    if list_:
        if not resync.is_empty(selector) or now or wait:
            raise typer.BadParameter(
                "--list shows the requests: give it no selector, --now or --wait"
            )
        with existing_store(cfg) as store:
            _list_requests(store, as_json)
        return
    if now and wait:
        raise typer.BadParameter("--now runs it here, --wait waits for the daemon: give one")
    if resync.is_empty(selector):
        raise typer.BadParameter("name records: --email, --id, --held, --since/--until or --all")
    conflict = resync.conflict(selector)
    if conflict is not None:
        raise typer.BadParameter(conflict)
    if obj not in cfg.fields:
        raise typer.BadParameter(f"{obj!r} is not an object of fields.yaml", param_hint="--object")
    with existing_store(cfg) as store:
        missing = resync.unmatched(store, obj, selector, list(cfg.syncd.systems))
        named = len(email or []) + len(record_id or []) + held
        for text in missing:
            err.print(f"[yellow]![/yellow] {escape(text)}")
        if named and len(missing) == named:
            err.print(
                f"resync: the selector matches nothing ({resync.describe(selector)});"
                " nothing queued"
            )
            raise typer.Exit(1)
        request = resync.enqueue(store, obj, selector, datetime.now(UTC))
        holder = None if now else current_holder(store)
        if not now and (holder is None or not holder["live"]):
            err.print(
                f"[yellow]no daemon holds the lease[/yellow]: resync {request} waits until"
                " `syncd run` takes it; `syncd resync --now ...` runs it here instead"
            )
        if now:
            with connected(cfg, store) as engine:
                preflight.gate(cfg, engine)  # a blocking setup problem fails the request
                with Budgets.for_config(store, cfg).metered([engine.marketing, engine.crm]):
                    resync.drain(engine, only=request, quiet=True)  # the answer is below
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
    if answer["state"] == resync.DONE and not sum((answer["result"].get("read") or {}).values()):
        err.print(
            f"resync {request} matched nothing: no {obj} was read for {resync.describe(selector)}"
        )
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
