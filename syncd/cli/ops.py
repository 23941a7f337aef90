"""The operator's commands, from the state store alone (no API calls): ``syncd errors``,
``syncd errors dismiss``, ``syncd retry`` and ``syncd explain``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from syncd.cli.common import (
    DEFAULT_CONFIG,
    ConfigOption,
    JsonOption,
    console,
    dump,
    err,
    existing_store,
    moment,
)
from syncd.cli.operator_view import explanation_dict, letters_table, print_explanation
from syncd.config.load import load_config
from syncd.state import operator
from syncd.state.explain import explain as explain_record
from syncd.state.explain import name_problem
from syncd.state.operator import Letter

errors_app = typer.Typer(
    invoke_without_command=True,
    add_completion=False,
)

Ids = Annotated[list[int], typer.Argument(help="Dead letter ids (see syncd errors).")]


@errors_app.callback()
def errors(
    ctx: typer.Context,
    system: Annotated[str | None, typer.Option(help="Only letters this system refused.")] = None,
    obj: Annotated[
        str | None, typer.Option("--object", help="Only this object: company, person or deal.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only letters seen at or after this ISO date or time.")
    ] = None,
    code: Annotated[str | None, typer.Option(help="Only this error code.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Also resolved and dismissed letters.")
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Records a system refused, newest first, with that system's own message.

    Each shows its attempts and next retry; `syncd errors dismiss` hides one, `syncd retry`
    queues it again at once.

    Example:

    $ syncd errors --object person --since 2026-05-01
    $ syncd errors dismiss 12 13 --reason "test records"
    """
    if ctx.invoked_subcommand is not None:
        if system or obj or since or code or everything:
            raise typer.BadParameter(
                f"filters list dead letters; they do not apply to `{ctx.invoked_subcommand}`"
            )
        return
    since_at = moment(since, "--since")
    cfg = load_config(config)
    if system is not None and system not in (cfg.syncd.marketing, cfg.syncd.crm):
        raise typer.BadParameter(f"{system!r} is not a system of {config}", param_hint="--system")
    if obj is not None and obj not in cfg.fields:
        raise typer.BadParameter(f"{obj!r} is not an object of fields.yaml", param_hint="--object")
    with existing_store(cfg) as store:
        found = operator.letters(
            store, system=system, obj=obj, code=code, since=since_at, everything=everything
        )
    now = datetime.now(UTC)
    if as_json:
        dump([letter.as_dict(now) for letter in found])
        return
    if not found:
        console.print(f"No {'' if everything else 'open '}dead letters.")
        return
    console.print(letters_table("Dead letters", found, now, state=everything))


@errors_app.command()
def dismiss(
    ctx: typer.Context,
    ids: Ids,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the letter).")] = None,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Dismiss dead letters: kept, listed by `errors --all`, and no longer retried.

    Example:

    $ syncd errors dismiss 12 13 --reason "test records"
    """
    config, as_json = _inherited(ctx, config, as_json)
    with existing_store(load_config(config)) as store:
        done = operator.dismiss(store, ids, reason, datetime.now(UTC))
    if done.missing:
        _missing(done.missing, "nothing dismissed")
    now = datetime.now(UTC)
    if as_json:
        dump(
            {
                "dismissed": [x.as_dict(now) for x in done.dismissed],
                "skipped": [{"id": x.id, "why": why} for x, why in done.skipped],
                "inbox_rows_unqueued": done.unqueued,
            }
        )
        return
    for letter in done.dismissed:
        line = f"Dismissed {letter.id}: {letter.source} -> {letter.system} ({letter.message})"
        console.print(Text(line))
        if letter.by_closed_loop:
            console.print(
                Text(
                    f"  the closed loop still tries {letter.source} each cycle until the"
                    " deal's people land; the letter stays dismissed meanwhile"
                )
            )
    for letter, why in done.skipped:
        console.print(Text(f"Left {letter.id} ({letter.source}) as it is: {why}"))
    if done.dismissed:
        console.print(f"{done.unqueued} inbox row(s) taken off the retry queue.")


def retry(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Dead letter ids (see syncd errors).")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Every open dead letter.")] = False,
    include_dismissed: Annotated[
        bool, typer.Option("--include-dismissed", help="Retry dismissed letters too.")
    ] = False,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Re-queue dead letters for the next cycle (attempts are kept).

    Example:

    $ syncd retry 12 13
    $ syncd retry --all
    """
    if bool(ids) == every:
        raise typer.BadParameter("give dead letter ids or --all, not both and not neither")
    with existing_store(load_config(config)) as store:
        done = operator.retry(store, None if every else ids, include_dismissed=include_dismissed)
    if done.missing:
        _missing(done.missing, "nothing re-queued")
    now = datetime.now(UTC)
    if as_json:
        dump(
            {
                "queued": [x.as_dict(now) for x in done.queued],
                "not_queued": [{**x.as_dict(now), "why": _why_not(x)} for x in done.not_queued],
                "skipped": [{"id": x.id, "why": why} for x, why in done.skipped],
            }
        )
        return
    if done.queued:
        console.print(letters_table("Queued for the next cycle", done.queued, now))
    for letter in done.not_queued:
        console.print(Text(f"{letter.id} {letter.source}: {_why_not(letter)}"))
    for letter, why in done.skipped:
        console.print(Text(f"{letter.id} {letter.source}: skipped, {why}"))
    if not (done.queued or done.not_queued or done.skipped):
        console.print("No open dead letters to retry.")


def explain(
    record: Annotated[str, typer.Argument(help="An email, either system's id, or system:kind:id.")],
    journal: Annotated[
        int, typer.Option("--journal", min=1, help="How many journal entries per link.")
    ] = 20,
    config: ConfigOption = DEFAULT_CONFIG,
    as_json: JsonOption = False,
) -> None:
    """Why a record looks as it does: its link, values, stage history and journal.

    Which side changed which field when, which rule decided a clash, what was written
    where, and what was refused.

    Example:

    $ syncd explain ada@example.com
    $ syncd explain salesforce:Lead:00Q5g00000AbCdEEAZ --journal 50
    """
    problem = name_problem(record)
    if problem is not None:
        err.print(Text(f"syncd explain: {problem}"))
        raise typer.Exit(2)
    cfg = load_config(config)
    marketing, crm = cfg.syncd.marketing, cfg.syncd.crm
    with existing_store(cfg) as store:
        found = explain_record(store, record, marketing=marketing, crm=crm, journal_limit=journal)
    if not found.found:
        err.print(
            Text(f"Nothing in the store matches {record!r} (an email, an id, or system:kind:id).")
        )
        raise typer.Exit(1)
    roles, now = {"marketing": marketing, "crm": crm}, datetime.now(UTC)
    if as_json:
        dump(explanation_dict(found, roles, now))
    else:
        print_explanation(console, found, roles, now)


# -- helpers --------------------------------------------------------------------------


def _inherited(ctx: typer.Context, config: Path, as_json: bool) -> tuple[Path, bool]:
    """``syncd errors -c prod.yaml --json dismiss 3`` means what it says."""
    given = ctx.parent.params if ctx.parent is not None else {}
    if config == DEFAULT_CONFIG and given.get("config"):
        config = given["config"]
    return config, as_json or bool(given.get("as_json"))


def _missing(ids: list[int], consequence: str) -> None:
    err.print(f"No dead letter with id {', '.join(map(str, ids))}; {consequence}.")
    raise typer.Exit(1)


def _why_not(letter: Letter) -> str:
    if letter.by_closed_loop:
        return "the closed loop tries this move again each cycle by itself; nothing to queue"
    return (
        "no inbox rows wait for it (dismissed earlier, or read again since): it syncs"
        f" when the record next changes, or now with"
        f" `syncd resync --object {letter.object} --id {letter.source}`"
    )
