"""The command line: parse, call, print (rich for people, --json for machines)."""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from syncd import __version__, logs, preflight, registry
from syncd.cli import daemon as cli_daemon
from syncd.cli import progress as cli_progress
from syncd.cli import projection as cli_projection
from syncd.cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    LogLevelOption,
    connected,
    console,
    dump,
    err,
    existing_store,
    missing_config,
    moment,
)
from syncd.config.load import load_config
from syncd.config.settings import Config
from syncd.daemon import cadence
from syncd.daemon.budget import Budgets
from syncd.daemon.lease import current_holder
from syncd.errors import ConfigError, SetupError, SyncdError
from syncd.harness import sandbox
from syncd.report import html as report_html
from syncd.report import view as report_view
from syncd.report.build import build, read_history
from syncd.report.model import Period
from syncd.state import control
from syncd.state import url as store_url
from syncd.state.control import last_cycles
from syncd.state.store import Store
from syncd.sync.cycle import CycleReport
from syncd.sync.engine import Engine

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


def _show_version(value: bool) -> None:
    if value:
        console.print(f"syncd {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keep HubSpot and Salesforce in agreement about companies, people and deals.

    Try it without credentials: syncd demo. Check a configuration: syncd validate.
    Run the service: syncd run. See why a record looks as it does: syncd explain EMAIL.
    """


@contextmanager
def _engine(config: Config) -> Iterator[Engine]:
    with Store.open(config.store_url) as store, connected(config, store) as engine:
        yield engine


def _report_table(title: str, report: CycleReport) -> Table:
    """What a cycle did per object and system; for a dry run, what it would have done."""
    would = report.dry_run
    table = Table(title=f"{title} (dry run: would be written, nothing was)" if would else title)
    table.add_column("object")
    table.add_column("system")
    written = ("would create", "would update") if would else ("created", "updated", "rejected")
    for column in ("read", *written):
        table.add_column(column, justify="right")
    for obj, part in (report.objects or {"": report}).items():
        for system in sorted(set(part.read) | set(part.created) | set(part.updated)):
            counts = [part.read[system], part.created[system], part.updated[system]]
            if not would:  # a dry run writes nothing, so nothing is refused
                counts.append(part.rejected[system])
            table.add_row(obj, system, *(str(n) for n in counts))
    table.caption = (
        f"conflicts {report.conflicts} · unchanged {report.unchanged} · "
        f"duplicates {report.duplicates} · skipped {report.skipped}"
    )
    if report.gated:
        table.caption += f" · held back by the gate: {report.gated}"
    if not would:  # a dry run converts nothing: conversions move links, which it does not
        table.caption += f" · converted leads {report.converted}"
    return table


@app.command()
def once(
    config: ConfigOption = DEFAULT_CONFIG,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; write nothing.")] = False,
    obj: Annotated[
        str | None,
        typer.Option("--object", help="Only this object: company, person or deal."),
    ] = None,
    as_json: JsonOption = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress lines while it runs.")
    ] = False,
    log_level: LogLevelOption = None,
) -> None:
    """Run one cycle of every object, or of one; --dry-run writes nothing.

    The objects run in order: companies, people, deals. --dry-run prints the plan and what
    it would create and update. While it runs, a terminal shows its progress on stderr
    (records read and written per object and system, the rates, the waits for the rate
    limits); --json, --quiet or a stderr that is no terminal turn that off.

    Example:

    $ syncd once --dry-run -c /etc/syncd/syncd.yaml
    $ syncd once --object person
    """
    cfg = load_config(config)
    logs.setup(level=logs.level_of(log_level or cfg.syncd.log_level, "warning"))
    if obj is not None and obj not in cfg.fields:
        raise typer.BadParameter(f"{obj!r} is not an object of fields.yaml", param_hint="--object")
    with _engine(cfg) as engine:
        with Budgets.for_config(engine.store, cfg).metered([engine.marketing, engine.crm]):
            checks = preflight.gate(cfg, engine)  # its calls count against the budget too
        if checks.blocking and not dry_run:
            if as_json:
                dump({"written": False, "checks_failed": [p.as_dict() for p in checks.blocking]})
                raise typer.Exit(1)
            raise SetupError([str(p) for p in checks.blocking])
        if as_json or quiet or not err.is_terminal:
            report = _cycles(cfg, engine, obj, dry_run)
        else:
            with cli_progress.shown(err, [engine.marketing, engine.crm]) as tally:
                engine.progress = tally
                report = _cycles(cfg, engine, obj, dry_run)
    if as_json:
        result = report.as_dict()
        if dry_run:
            result["plan"] = [_plan_dict(p) for p in report.plans]
            result["checks_failed"] = [p.as_dict() for p in checks.blocking]
        dump(result)
        if checks.blocking:
            raise typer.Exit(1)
        return
    if dry_run:
        plan = Table(title="Plan (dry run: nothing written)")
        for column in ("pair", "to marketing", "to crm", "note"):
            plan.add_column(column)
        for p in report.plans:
            if p.changes or p.skip:
                source = p.marketing or p.crm
                plan.add_row(
                    str(source.ref) if source else p.key,
                    _change_text(p.marketing_change),
                    _change_text(p.crm_change),
                    p.skip or "; ".join(p.notes),
                )
        console.print(plan)
    console.print(_report_table("Cycle " + report.cycle_id, report))
    if checks.blocking:
        err.print("[red]The setup checks fail: a run without --dry-run writes nothing[/red]")
        for problem in checks.blocking:
            err.print(f"[red]✗[/red] {escape(str(problem))}")
        raise typer.Exit(1)


def _cycles(cfg: Config, engine: Engine, obj: str | None, dry_run: bool) -> CycleReport:
    """One cycle of each object in order (or of ``obj``), each kept in the store as the
    daemon keeps its own, with the API calls it made, so that `syncd status` shows them
    (a dry run's calls are counted; it is no cycle). One ``run_once``, so that the next
    object's scan begins while this one writes (``syncd.sync.engine``)."""
    budgets = Budgets.for_config(engine.store, cfg)
    current: dict[str, Any] = {}

    def starting(name: str) -> None:
        current.update(name=name, started=datetime.now(UTC))

    def finished(name: str, part: CycleReport) -> None:
        if not dry_run:
            result = {**part.as_dict(), "by": "syncd once"}
            control.record_cycle(
                engine.store,
                name,
                part.cycle_id,
                current["started"],
                datetime.now(UTC),
                True,
                result,
            )

    try:
        with budgets.metered([engine.marketing, engine.crm]):
            return engine.run_once(obj, dry_run=dry_run, starting=starting, finished=finished)
    except SetupError:
        raise
    except Exception as error:
        if not dry_run and current:
            failed = {"error": str(error), "by": "syncd once"}
            control.record_cycle(
                engine.store,
                current["name"],
                "-",
                current["started"],
                datetime.now(UTC),
                False,
                failed,
            )
        raise


def _change_text(change: Any) -> str:
    """One write for people: ``create Lead: email=..., Status=...``."""
    if change is None:
        return ""
    target = change.kind if change.op == "create" else f"{change.kind} {change.id}"
    values = {**change.fields, **{k: v for k, v in change.stage.items() if v}}
    if change.partner_id and change.op == "update" and not values:
        values = {"partner id": change.partner_id}
    shown = ", ".join(f"{k}={v if v is not None else '(blank)'}" for k, v in values.items())
    return f"{change.op} {target}: {shown}"


def _plan_dict(plan: Any) -> dict[str, Any]:
    def change(c: Any) -> dict[str, Any] | None:
        if c is None:
            return None
        return {
            "op": c.op,
            "kind": c.kind,
            "id": c.id,
            "fields": dict(c.fields),
            "stage": dict(c.stage),
        }

    return {
        "key": plan.key,
        "marketing": change(plan.marketing_change),
        "crm": change(plan.crm_change),
        "skip": plan.skip,
        "notes": list(plan.notes),
    }


@app.command()
def validate(
    config: ConfigOption = DEFAULT_CONFIG,
    offline: Annotated[bool, typer.Option(help="Check the files only.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Check the configuration files and, unless --offline, both systems' live setup.

    The live checks are the ones `once` and `run` make before they write (fields,
    partner-id fields, picklists). It also prints the projected idle API calls a day per
    system and how long a change takes to cross in each direction.

    Example:

    $ syncd validate --offline -c /etc/syncd/syncd.yaml
    $ syncd validate --json
    """
    cfg = load_config(config)
    result = preflight.Result()
    if not offline:
        # a credential set nowhere is a ConfigError naming every one of both systems (exit 2)
        connectors = [registry.connector(cfg, n) for n in (cfg.syncd.marketing, cfg.syncd.crm)]
        try:
            result = preflight.check(cfg, connectors)
        finally:
            for connector in connectors:
                connector.close()
    projection = cadence.project(cfg)
    problems = result.problems + [
        preflight.Problem(p.message, None, False, p.file, p.line, p.key)
        for p in cadence.warnings(cfg, projection)
    ]
    table = _read_rows(cfg, registry.rules(cfg))
    if as_json:
        dump(
            {
                "ok": not result.blocking,
                "problems": [p.as_dict() for p in problems],
                "systems_checked": result.checked,
                "read_table": table,
                "store": _store_in_effect(cfg),
                "projection": projection.as_dict(),
            }
        )
    else:
        shown = Table(title=f"How native stage values read ({cfg.syncd.stages})")
        for column in ("object", "system", "native value", "reads as", "why"):
            shown.add_column(column)
        for row in table:
            shown.add_row(*(escape(str(v)) for v in row.values()))
        console.print(shown)
        console.print(cli_projection.idle_table(projection))
        console.print(cli_projection.propagation_table(projection))
        for line in cli_projection.floors(projection):
            console.print(line)
        for problem in problems:
            mark = "[red]✗[/red]" if problem.blocking else "[yellow]![/yellow]"
            err.print(f"{mark} {escape(str(problem))}")
        console.print(_store_line(cfg))
        if not result.blocking:
            console.print(
                f"[green]✓[/green] configuration valid; live setup checked: "
                f"{', '.join(result.checked) or 'none (offline)'}"
            )
    if result.blocking:
        raise typer.Exit(1)


def _store_in_effect(cfg: Config) -> dict[str, str]:
    """The store every command and the daemon open with this configuration, and who named it."""
    return {"url": store_url.shown(cfg.store_url), "from": cfg.store_source}


def _store_line(cfg: Config) -> str:
    store = _store_in_effect(cfg)
    return f"Store: {escape(store['url'])} (named by {escape(store['from'])})"


def _read_rows(cfg: Config, rules: dict[str, Any]) -> list[dict[str, str]]:
    """The read table of every object: what each native stage value reads as."""
    rows = []
    for obj, obj_rules in rules.items():
        vocabulary = obj_rules.vocabulary
        for system in (cfg.syncd.marketing, cfg.syncd.crm):
            for native, reads_as, why in vocabulary.read_table(system) if vocabulary else ():
                rows.append(
                    {
                        "object": obj,
                        "system": system,
                        "value": native,
                        "reads_as": reads_as,
                        "why": why,
                    }
                )
    return rows


@app.command()
def status(config: ConfigOption = DEFAULT_CONFIG, as_json: JsonOption = False) -> None:
    """Cursors and counts from the store (no API calls).

    Example:

    $ syncd status -c /etc/syncd/syncd.yaml
    $ syncd status --json
    """
    cfg = load_config(config)
    with existing_store(cfg) as store:
        counts, cursors = store.counts(), store.cursors()
        by_object = store.links_by_object()
        current, newest = store.schema_version()
        holder, paused, cycles = current_holder(store), control.paused(store), last_cycles(store)
        budgets = Budgets.for_config(store, cfg)
        now = datetime.now(UTC)
        api_today = {
            name: {**budgets.today(name, now), "budget": budgets.settings[name][0]}
            for name in cfg.syncd.systems
        }
        backlog = store.inbox_by_object()
    if as_json:
        dump(
            {
                "counts": counts,
                "links": by_object,
                "cursors": cursors,
                "schema": current,
                "lease": holder,
                "paused": paused,
                "last_cycles": cycles,
                "api_calls_today": api_today,
                "backlog": backlog,
                "store": _store_in_effect(cfg),
            }
        )
        return
    console.print(_store_line(cfg))
    for name, usage in api_today.items():
        limit = f" of {usage['budget']}" if usage["budget"] is not None else ""
        paced = (
            f"; {usage['waits']} waited for the pacing ({(usage['wait_ms'] or 0) / 1000:.1f} s),"
            f" {usage['http_429']} answered 429"
        )
        console.print(f"API calls today, {name}: {usage['calls']}{limit}{paced}")
    if counts.get("gate_held"):
        console.print(
            f"Held back by the gate: {counts['gate_held']} (in {cfg.syncd.marketing} only;"
            " syncd explain EMAIL says why; after changing gate:, syncd resync --held asks"
            " it again)"
        )
    if backlog:
        waiting = ", ".join(f"{obj} {count}" for obj, count in backlog.items())
        console.print(f"Waiting in the inbox (read, not yet merged): {waiting}")
    if holder is None:
        console.print("Daemon: no daemon holds the lease")
    else:
        state = "live" if holder["live"] else "EXPIRED (is the daemon running?)"
        console.print(f"Daemon: lease held by {holder['holder']} since {holder['since']}, {state}")
    for scope, pause in paused.items():
        why = f": {pause['reason']}" if pause["reason"] else ""
        console.print(f"[yellow]Paused[/yellow] {scope} since {pause['since']}{why}")
    if cycles:
        last = Table(title="Last cycles")
        for column in ("object", "finished", "ago", "result"):
            last.add_column(column)
        for obj, cycle in cycles.items():
            result = cycle["result"]
            text = (
                f"read {sum(result['read'].values())}, "
                f"wrote {sum(result['created'].values()) + sum(result['updated'].values())}, "
                f"rejected {sum(result['rejected'].values())}"
                + _propagation_text(result.get("propagation") or {})
                + (f" ({result['by']})" if result.get("by") else "")
                if cycle["ok"]
                else f"[red]failed[/red]: {result.get('error')}"
            )
            ago = (datetime.now(UTC) - cycle["finished_at"]).total_seconds()
            last.add_row(obj, str(cycle["finished_at"]), f"{ago:.0f} s", text)
        console.print(last)
    table = Table(title="Cursors")
    for column in ("system", "kind", "changes read up to", "stored at"):
        table.add_column(column)
    for c in cursors:
        table.add_row(c["system"], c["kind"], str(c["since"] or "-"), str(c["updated_at"]))
    console.print(table)
    counts_table = Table(title=f"Store (schema {current}, newest {newest})")
    counts_table.add_column("what")
    counts_table.add_column("count", justify="right")
    for name, value in counts.items():
        counts_table.add_row(name.replace("_", " "), str(value))
        if name == "links":
            for obj, linked in by_object.items():
                counts_table.add_row(f"  {obj}", str(linked))
    console.print(counts_table)


def _propagation_text(propagation: dict[str, Any]) -> str:
    """``; hubspot -> salesforce p50 12 s, p95 31 s (8)``: how long its changes took."""
    return "".join(
        f"; {way.replace('_to_', ' -> ')} p50 {got['p50_s']:g} s, p95 {got['p95_s']:g} s"
        f" ({got['changes']})"
        for way, got in propagation.items()
    )


@app.command()
def report(
    config: ConfigOption = DEFAULT_CONFIG,
    since: Annotated[
        str | None,
        typer.Option(
            help="Period start, ISO date or datetime (UTC if naive); default: "
            "--until minus report.days."
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Period end, excluded, like --since; default: now.")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Group by this person field.")] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the report as one HTML page here.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Funnel, speed to lead and closed loop over a period, from the store (no API calls).

    Example:

    $ syncd report --since 2026-01-01 --by lead_source
    $ syncd report --html funnel.html
    """
    end = moment(until, "--until") or datetime.now(UTC)
    start = moment(since, "--since")
    cfg = load_config(config)
    start = start or end - timedelta(days=cfg.syncd.report.days)
    if start >= end:
        raise typer.BadParameter(
            f"{start.isoformat()} is not before {end.isoformat()}", param_hint="--since"
        )
    if by is not None and by not in cfg.fields.get("person", {}):
        raise typer.BadParameter(
            f"{by!r} is no person field of {cfg.syncd.fields}", param_hint="--by"
        )
    period = Period(start.astimezone(UTC), end.astimezone(UTC))
    with existing_store(cfg) as store:
        history = read_history(store, period)
    result = build(
        history, period, stages=cfg.stages, crm=cfg.syncd.crm, settings=cfg.syncd.report, by=by
    )
    if html is not None:
        html.write_text(report_html.render(result), encoding="utf-8")
    if as_json:
        dump(result.as_dict())
    elif html is not None:
        console.print(f"Report written to {escape(str(html))}")
    else:
        report_view.print_report(console, result)


@app.command()
def emulate(
    out: Annotated[Path, typer.Option(help="Where to write the configuration.")] = Path("emulated"),
) -> None:
    """Both emulators in the foreground with the demo's whole funnel, and a configuration.

    People, companies and a deal on each side, a converted lead whose opportunity is won,
    and a lost opportunity. Nothing is synced yet: run syncd once (or syncd run) against
    them from another shell; Ctrl-C stops them.

    Example:

    $ syncd emulate --out emulated
    $ syncd once --config emulated/syncd.yaml
    """
    box = sandbox.start(out, seed=sandbox.seed_funnel)
    console.print(f"HubSpot emulator:    {box.emulators['hubspot'].url}")
    salesforce = box.emulators["salesforce"]
    console.print(
        f"Salesforce emulator: {salesforce.url} (its My Domain {salesforce.my_domain_url},"
        " reached by connect_to in the configuration)"
    )
    console.print(f"Configuration:       {box.config_path}")
    hubspot = box.emulators["hubspot"]
    console.print(
        "Sample data:         HubSpot "
        + ", ".join(f"{len(hubspot.objects(t))} {t}" for t in ("contacts", "companies", "deals"))
        + "; Salesforce "
        + ", ".join(
            f"{len(salesforce.records(kind, include_deleted=False))} {kind}"
            for kind in ("Lead", "Contact", "Account", "Opportunity")
        )
        + " (a lead converted, an opportunity won, one lost)"
    )
    console.print(f"Try:  syncd once --config {box.config_path}   (Ctrl-C stops the emulators)")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        box.stop()


@app.command()
def demo(
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the demo's store and configuration in this folder (new or empty), to try"
            " status, report and explain on them afterwards.",
        ),
    ] = None,
) -> None:
    """A real sync between the two emulators, printed as it goes; ends with the report.

    Sample people, companies and deals are linked, edited, converted, won and lost on an
    embedded SQLite store; --keep leaves that store and its configuration behind.

    Example:

    $ syncd demo
    $ syncd demo --keep demo-run
    """
    from syncd.harness.demo import run_demo

    wide = Console(soft_wrap=True, width=max(console.width, 120))
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="syncd-demo-") as directory:
            failed = run_demo(Path(directory), wide)
    else:
        if keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
            raise typer.BadParameter(
                f"{keep} is not an empty folder: the demo writes a store and a configuration",
                param_hint="--keep",
            )
        failed = run_demo(keep, wide)
        config = keep / "syncd.yaml"
        console.print(
            f"\nThe demo's store and configuration are in {escape(str(keep))}. The emulators"
            " are gone, so these read the store only:"
        )
        for command in (
            f"syncd status --config {config}",
            f"syncd report --config {config} --html {keep / 'report.html'}",
            f"syncd explain katherine@example.com --config {config}",
            f"syncd errors --config {config}",
        ):
            console.print(f"  {escape(command)}")
    if failed:
        raise typer.Exit(1)


@app.command()
def bench(
    records: Annotated[
        list[int] | None, typer.Option("--records", "-n", help="People to sync (repeatable).")
    ] = None,
    archived: Annotated[
        int, typer.Option("--archived", help="Contacts archived in HubSpot already.")
    ] = 100_000,
    unthrottled: Annotated[
        bool,
        typer.Option(
            "--unthrottled", help="Emulators without the published rate limits (loopback speed)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure syncd against the emulators: backfill, steady state, idle cost, the report.

    The emulators run in processes of their own and enforce the published rate limits
    unless --unthrottled.

    Example:

    $ syncd bench -n 10000 --unthrottled
    """
    from syncd.harness.bench import run

    table = Table(title="syncd bench")
    for column in (
        "people",
        "backfill rec/s",
        "HubSpot calls / floor",
        "Salesforce calls / floor",
        "steady 1% calls",
        "split calls: 1 bad in 100",
        "idle calls/object (HubSpot, SF)",
        "activity reads SF calls/1k people",
        "429s (HubSpot, SF)",
        "wall s / bound s",
        "CPU ms/record",
        "peak RSS MB",
    ):
        table.add_column(column, justify="right")
    for result in run(records or [10_000, 100_000], archived, not unthrottled):
        if as_json:
            print(json.dumps(result), flush=True)
            continue
        calls, floor = result["api_calls"], result["api_calls_floor"]
        steady = result["steady_state"]["api_calls"]
        table.add_row(
            f"{result['records']:,}",
            f"{result['records_per_s']:,.0f}",
            f"{calls['hubspot']} / {floor['hubspot']}",
            f"{calls['salesforce']} / {floor['salesforce']}",
            f"{steady['hubspot']} + {steady['salesforce']}",
            f"{result['refused_batch']['split_calls']['hubspot']}",
            ", ".join(
                f"{obj} {c['hubspot']:g}+{c['salesforce']:g}"
                for obj, c in result["idle"]["calls_per_cycle"].items()
            ),
            f"{result['activities']['calls_per_1000_people']:g}",
            f"{result['http_429']['hubspot']} + {result['http_429']['salesforce']}",
            f"{result['wall_s']:,.1f} / {result['rate_limit_bound_s']['max']:,.1f}",
            f"{result['cpu_ms_per_record']:.2f}",
            f"{result['peak_rss_mb']:.0f}",
        )
    if not as_json:
        console.print(table)


app.command()(cli_daemon.run)
app.command()(cli_daemon.migrate)
app.command()(cli_daemon.pause)
app.command()(cli_daemon.resume)
app.command("resync")(cli_daemon.resync_command)


# Imported here, not above, so that this registration stays a block of its own.
from syncd.cli import ops as cli_ops  # noqa: E402

app.add_typer(cli_ops.errors_app, name="errors")
app.command()(cli_ops.retry)
app.command()(cli_ops.explain)

from syncd.cli import start as cli_start  # noqa: E402

app.command()(cli_start.init)
app.command()(cli_start.schema)

from syncd.cli import maintenance as cli_maintenance  # noqa: E402

app.command(hidden=True)(cli_maintenance.killsweep)


def main() -> None:
    try:
        app()
    except ConfigError as error:
        err.print("[red]Configuration error[/red]")
        for problem in error.problems:
            err.print(f"  {escape(missing_config(problem) or str(problem))}")
        sys.exit(2)
    except SetupError as error:
        err.print("[red]Setup checks failed: nothing written[/red]")
        for line in error.problems:
            err.print(f"  {escape(line)}")
        sys.exit(1)
    except SyncdError as error:
        err.print(f"[red]error:[/red] {error}")
        sys.exit(1)
