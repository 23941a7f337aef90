"""How the operator's commands print for people: dead letters and the story of a record
(rich tables, plain text cells), and the journal's entries in words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from syncd.state.explain import Explanation, LinkStory
from syncd.state.operator import Letter

WRAPPED = frozenset({"source", "message (code)", "state", "value", "record", "reason", "what"})
"""Table columns whose text may wrap; the others keep to one line."""
MIN_WIDTH = {"source": 14, "message (code)": 20, "what": 30, "value": 20}


def _at(value: datetime | None, width: int = 19) -> str:
    """A UTC time as ``2026-03-02 09:00:00``, cut to ``width`` characters."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")[:width] if value else "-"


def _value(value: Any) -> str:
    """A value for people: quoted, and cut short when long (--json has it whole)."""
    if value is None or value == "":
        return "(blank)"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    return str(value)


def _table(title: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    """A table whose cells are plain text (a system's message may hold ``[brackets]``)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column in columns:
        # Short columns (ids, times, counts) stay on one line; the long ones wrap.
        table.add_column(
            column,
            overflow="fold",
            no_wrap=column not in WRAPPED,
            min_width=MIN_WIDTH.get(column),
        )
    for row in rows:
        table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    return table


def letters_table(title: str, found: list[Letter], now: datetime, state: bool = True) -> Table:
    """Dead letters, one a row, with the system's message and the next retry."""
    columns = ["id", "refused by", "source", "message (code)", "attempts", "first / last seen"]
    columns += ["next retry", "state"] if state else ["next retry"]
    return _table(title, columns, (_letter_row(x, now, state) for x in found))


def _letter_row(letter: Letter, now: datetime, state: bool) -> list[Any]:
    x = letter
    message = f"{x.message}\n({x.code or 'no code'})"
    seen = f"{_at(x.first_at, 16)}\n{_at(x.last_at, 16)}"
    row = [x.id, f"{x.system}\n{x.object}", x.source, message, x.attempts, seen]
    row.append(_retry_text(x, now))
    return [*row, _state_text(x)] if state else row


def _state_text(letter: Letter) -> str:
    reason = letter.dismissed_reason if letter.state == "dismissed" else None
    return f"{letter.state}: {reason}" if reason else letter.state


def _retry_text(letter: Letter, now: datetime) -> str:
    due = letter.next_retry(now)
    if due is None or not letter.next_retry_at or due == "next cycle":
        return due or "-"
    return _at(letter.next_retry_at, 16)


def describe(entry: Mapping[str, Any], roles: Mapping[str, str]) -> str:
    """A journal entry's detail in words."""
    detail, action, system = entry["detail"], entry["action"], entry.get("system")
    if action in ("create", "update"):
        source = str(detail.get("from", ""))
        other = [s for s in roles.values() if s != system]
        by = "the closed loop" if source.startswith("loop:") else (other[0] if other else source)
        fields = [f"{k} = {_value(v)}" for k, v in detail.get("fields", {}).items()]
        stage = [f"{k} = {_value(v)}" for k, v in detail.get("stage", {}).items() if v]
        parts = [", ".join(fields)] if fields else []
        parts += ["stage " + ", ".join(stage)] if stage else []
        what = "; ".join(parts) or ("its first base" if action == "create" else "partner id only")
        return f"created from {source}: {what}" if action == "create" else f"from {by}: {what}"
    if action == "decision":
        parts = [
            f"conflict on {c['field']}: {roles['marketing']} {_value(c['marketing'])} vs"
            f" {roles['crm']} {_value(c['crm'])}; {c['rule']} kept"
            f" {roles.get(c['winner'], c['winner'])}'s"
            for c in detail.get("conflicts", [])
        ]
        return "; ".join(parts + [f"note: {note}" for note in detail.get("notes", [])])
    if action == "rejected":
        change = detail.get("change") or {}
        written = ", ".join(f"{k} = {_value(v)}" for k, v in change.get("fields", {}).items())
        code = f" ({detail['code']})" if detail.get("code") else ""
        target = " ".join(str(change[k]) for k in ("op", "kind", "id") if change.get(k))
        return f"refused by {system}: {detail.get('message')}{code}; the write: {target}: {written}"
    if action == "linked":
        why = f"; recovered: {detail['recovered']}" if detail.get("recovered") else ""
        matched = f"by {detail.get('matched_by')}" if detail.get("matched_by") else "alone"
        return f"linked {detail.get('marketing')} and {detail.get('crm')}, matched {matched}{why}"
    if action in ("skip", "ignored"):
        return f"skipped {detail.get('record', '')}: {detail.get('reason')}"
    if action in ("converted", "converted_deal", "conversion left alone"):
        why = f": {detail['reason']}" if detail.get("reason") else ""
        return f"{action}: {detail.get('from')} -> {detail.get('into')}{why}"
    if action == "closed_loop":
        return (
            f"people {detail.get('people')} moved by rule {detail.get('rule')}:"
            f" {detail.get('reason')}"
        )
    return ", ".join(f"{k} = {_value(v)}" for k, v in detail.items())


def print_explanation(
    console: Console, found: Explanation, roles: Mapping[str, str], now: datetime
) -> None:
    """Each link's story, then what waits for the record while it is not linked.

    ``roles`` names the systems: ``{"marketing": "hubspot", "crm": "salesforce"}``.
    """
    for story in found.links:
        _print_story(console, story, roles, now)
    for held in found.gated:
        why = str(held["reason"]).removeprefix("gate: ")
        console.print(
            Text(
                f"{held['system']}:{held['kind']}:{held['record_id']} is not in {roles['crm']}:"
                f" held back by the gate: {why} (as of {_at(held['at'])})"
            )
        )
    if found.letters or found.inbox:
        console.rule(Text(f"{found.record}: not linked"))
        _print_waiting(console, found.letters, found.inbox, now)


def _handed_off_with(snapshot: str | None) -> str | None:
    """A hand-off's snapshot as the reason column says it: what marketing knew then."""
    if not snapshot:
        return None
    known = orjson.loads(snapshot)
    return "handed off with " + ", ".join(f"{k} {v if v else '(blank)'}" for k, v in known.items())


def _print_story(
    console: Console, story: LinkStory, roles: Mapping[str, str], now: datetime
) -> None:
    link = story.link
    console.rule(Text(f"{link['object']} link {link['id']}"))
    sides = [
        f"{roles[role]} {link[role + '_kind']} {link[role + '_id']}"
        for role in ("marketing", "crm")
        if link[role + "_id"]
    ]
    console.print(Text("  <->  ".join(sides)))
    state = (
        f"tombstoned {_at(link['tombstoned_at'])}: {link['tombstone_reason']}"
        if link["tombstoned_at"]
        else "live"
    )
    console.print(
        Text(f"created {_at(link['created_at'])} · updated {_at(link['updated_at'])} · {state}")
    )
    if story.base is not None:
        title = f"Base, as last synced {_at(story.synced_at)} (stage {story.stage or '-'})"
        console.print(_table(title, ["field", "value"], story.base.items()))
    console.print(
        _table(
            "Stage history",
            ["at", "from -> to", "by", "record", "reason"],
            (
                [
                    _at(h["at"]),
                    f"{h['from_stage'] or '(none)'} -> {h['to_stage']}",
                    h["source_system"],
                    h["source_record"],
                    h["reason"] or _handed_off_with(h.get("snapshot")),
                ]
                for h in story.history
            ),
        )
    )
    console.print(
        _table(
            f"Journal (last {len(story.journal)}, oldest first)",
            ["at", "action", "written to", "what"],
            (
                [_at(j["at"]), j["action"], _written_to(j), describe(j, roles)]
                for j in story.journal
            ),
        )
    )
    _print_waiting(console, story.letters, story.inbox, now)


def _written_to(entry: Mapping[str, Any]) -> str:
    """The system and record a journal entry is about, on two lines ("-" for none)."""
    return "\n".join(str(entry[k]) for k in ("system", "record_id") if entry[k]) or "-"


def _print_waiting(
    console: Console, letters: list[Letter], inbox: list[dict[str, Any]], now: datetime
) -> None:
    if letters:
        console.print(letters_table("Dead letters", letters, now))
    if inbox:
        console.print(
            _table(
                "Waiting in the inbox",
                ["system", "kind", "id", "modified", "attempts", "not before"],
                (_inbox_row(r) for r in inbox),
            )
        )


def _inbox_row(row: Mapping[str, Any]) -> list[Any]:
    due = _at(row["not_before"]) if row["not_before"] else "next cycle"
    when = _at(row["modified_at"])
    return [row["system"], row["kind"], row["record_id"], when, row["attempts"], due]


def explanation_dict(found: Explanation, roles: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The explanation for machines; each journal entry also in words (``text``)."""
    return {
        "record": found.record,
        "links": [
            {
                "link": story.link,
                "base": story.base,
                "stage": story.stage,
                "synced_at": story.synced_at,
                "stage_history": story.history,
                "journal": [{**j, "text": describe(j, roles)} for j in story.journal],
                "dead_letters": [x.as_dict(now) for x in story.letters],
                "inbox": story.inbox,
            }
            for story in found.links
        ],
        "dead_letters": [x.as_dict(now) for x in found.letters],
        "inbox": found.inbox,
        "gate": found.gated,
    }
