"""The SLA written where people work: a hand-off past ``report.speed_to_lead_sla_hours``
with no touch gets, once, a task for its owner in the CRM (``sla.crm_task``) and a flag
on the contact in the marketing system (``sla.marketing_property``), both off by
default; the flag is cleared when the first touch comes.

Each person cycle, after the activities are read (``syncd.sync.touches``):

1. Hand-offs newly past the SLA (the person's latest hand-off, at most
   ``sla.look_back_days`` old, no touch, the person still at the hand-off stage) are
   stored as breaches with an *intent* per enabled write, committed before any write.
2. Task intents: the people's owners are read (one query per 200), then the tasks are
   written by the connector's match-before-create (a task carrying the breach's marker
   is the one already written: ``connectors.salesforce.reminders``), then committed
   as written, journaled (``sla_task``). A crash between the write and the commit
   leaves the intent, and the next cycle finds the task instead of writing another.
   A refusal is dead-lettered with the CRM's message (state ``refused``).
3. Flag intents: the property is set to "true" (batch updates), committed as written,
   journaled (``sla_flag``). Setting it again after a crash changes nothing.
4. Breaches touched since: their flag is set to "" (cleared), journaled
   (``sla_clear``). A task intent not yet written when the touch came is dropped
   (``skipped``). The CRM task is left as it is: it is the rep's to close, and
   closing it for them would hide that it was written late.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from syncd.config.settings import Config, SlaSettings
from syncd.model import FieldType, Outcome, RecordRef, Reminder
from syncd.state import sla as stored
from syncd.state.store import Store
from syncd.sync import killpoints

HIDDEN = "~sla:"
FLAG = HIDDEN + "flag"
"""The hidden person field of the marketing flag's property: mapped on the marketing
connector (``syncd.registry``) so that its setup check finds the property missing, or
of a type that cannot hold "true", or read-only, and ``syncd validate`` names
``sla.marketing_property.property`` for it."""


def hidden_fields(config: Config) -> dict[str, tuple[str, FieldType]]:
    """The hidden person fields the marketing connector writes for the SLA: name ->
    (property, type); none while the flag is off."""
    flag = config.syncd.sla.marketing_property
    return {FLAG: (flag.property, "string")} if flag.enabled else {}


def config_key(name: str) -> list[str | int]:
    """Where in syncd.yaml the property of hidden field ``name`` is named."""
    return ["sla", "marketing_property", "property"]


class ReminderWriter(Protocol):
    """A CRM connector that writes SLA reminder tasks (``connectors.salesforce``)."""

    system: str

    def person_owners(self, people: Sequence[RecordRef]) -> dict[str, str]: ...

    def write_reminders(self, reminders: Sequence[Reminder]) -> list[Outcome]: ...


class Flagger(Protocol):
    """A marketing connector that sets syncd's flags on people (``connectors.hubspot``)."""

    system: str

    def mark_people(self, ids: Sequence[str], properties: Mapping[str, str]) -> list[Outcome]: ...


@dataclass(frozen=True)
class SlaRun:
    """What one pass wrote."""

    opened: int = 0
    tasks: int = 0
    flags: int = 0
    cleared: int = 0


def run(
    store: Store,
    crm: object,
    marketing: object,
    settings: SlaSettings,
    *,
    stage: str,
    sla_hours: float,
    now: datetime,
    cycle_id: str,
) -> SlaRun:
    """One pass: open new breaches, write their intents, clear the touched ones."""
    task = settings.crm_task.enabled and callable(getattr(crm, "write_reminders", None))
    flag = settings.marketing_property.enabled and callable(getattr(marketing, "mark_people", None))
    if not (task or flag):
        return SlaRun()
    with store.engine.begin() as connection:
        opened = stored.open_new(
            connection,
            stage,
            timedelta(hours=sla_hours),
            timedelta(days=settings.look_back_days),
            now,
            task=task,
            flag=flag,
        )
    with store.engine.connect() as connection:
        pending = stored.pending(connection)
    tasks = flags = cleared = 0
    if task:
        tasks = _tasks(store, crm, settings, pending, now, cycle_id)  # type: ignore[arg-type]
    if flag:
        flags, cleared = _flags(store, marketing, settings, pending, now, cycle_id)  # type: ignore[arg-type]
    return SlaRun(opened, tasks, flags, cleared)


def marker(breach: stored.Breach) -> str:
    """What a reminder task carries so that it is found again: ``[syncd-sla 12@1767225600]``."""
    return f"[syncd-sla {breach.key}]"


def _tasks(
    store: Store,
    crm: ReminderWriter,
    settings: SlaSettings,
    pending: Sequence[stored.Breach],
    now: datetime,
    cycle_id: str,
) -> int:
    wanted = [b for b in pending if b.task_state == stored.INTENT]
    skipped = [b for b in wanted if b.touched]
    wanted = [b for b in wanted if not b.touched and b.crm_id and b.crm_kind]
    if skipped:
        with store.engine.begin() as connection:
            for breach in skipped:
                stored.settle(connection, breach, now, cycle_id, task_state=stored.SKIPPED)
    if not wanted:
        return 0
    owners = crm.person_owners(
        [RecordRef(crm.system, str(b.crm_kind), str(b.crm_id)) for b in wanted]
    )
    options = settings.crm_task
    due = (now + timedelta(hours=options.due_in_hours)).date()
    reminders = [
        Reminder(b.key, str(b.crm_id), owners.get(str(b.crm_id)), options.subject, due, marker(b))
        for b in wanted
    ]
    outcomes = {o.key: o for o in crm.write_reminders(reminders)}
    killpoints.reached("sla.tasks_written")
    written = 0
    with store.engine.begin() as connection:
        for breach, reminder in zip(wanted, reminders, strict=True):
            outcome = outcomes.get(breach.key)
            if outcome is None or not outcome.ok:
                message = outcome.error if outcome else "no answer"
                code = outcome.code if outcome else None
                change = {"task": reminder.subject, "who": reminder.person_id}
                stored.refused(
                    connection, breach, crm.system, breach.crm_id, str(message), code, change, now
                )
                stored.settle(connection, breach, now, cycle_id, task_state=stored.REFUSED)
                continue
            written += 1
            stored.settle(
                connection,
                breach,
                now,
                cycle_id,
                task_state=stored.WRITTEN,
                task_id=outcome.id,
                owner_id=reminder.owner_id,
            )
            detail = {"task": outcome.id, "owner": reminder.owner_id, "found": not outcome.created}
            stored.journal_entry(
                connection, breach, crm.system, breach.crm_id, "sla_task", detail, now, cycle_id
            )
    return written


def _flags(
    store: Store,
    marketing: Flagger,
    settings: SlaSettings,
    pending: Sequence[stored.Breach],
    now: datetime,
    cycle_id: str,
) -> tuple[int, int]:
    name = settings.marketing_property.property
    to_set = [b for b in pending if b.flag_state == stored.INTENT and not b.touched]
    to_clear = [b for b in pending if b.touched and b.flag_state in (stored.INTENT, stored.WRITTEN)]
    done = []
    for breaches, value, state, action in (
        (to_set, "true", stored.WRITTEN, "sla_flag"),
        (to_clear, "", stored.CLEARED, "sla_clear"),
    ):
        if not breaches:
            done.append(0)
            continue
        ids = [str(b.marketing_id) for b in breaches]
        outcomes = marketing.mark_people(ids, {name: value})
        killpoints.reached("sla.flags_written")
        count = 0
        with store.engine.begin() as connection:
            for breach, outcome in zip(breaches, outcomes, strict=True):
                if not outcome.ok:
                    change = {name: value}
                    stored.refused(
                        connection,
                        breach,
                        marketing.system,
                        breach.marketing_id,
                        str(outcome.error),
                        outcome.code,
                        change,
                        now,
                    )
                    stored.settle(connection, breach, now, cycle_id, flag_state=stored.REFUSED)
                    continue
                count += 1
                stored.settle(connection, breach, now, cycle_id, flag_state=state)
                stored.journal_entry(
                    connection,
                    breach,
                    marketing.system,
                    breach.marketing_id,
                    action,
                    {name: value},
                    now,
                    cycle_id,
                )
        done.append(count)
    return done[0], done[1]
