"""One sync cycle: read both systems into the inbox, reconcile, write in batches, commit.

A cycle runs each object in order (companies, people, deals), so that what a record
refers to is linked first:

    pull:  cursor -> pages of changes -> inbox (+ cursor advance), one transaction a page
    merge: inbox -> conversions (links move) -> pairs (links, partner ids, match field) ->
           plan_pair -> batch writes -> one transaction a chunk: links, bases, stage
           history, journal, dead letters, inbox rows removed; for deals, the closed loop

While one object's merges and writes finish, the next object's scans of a system that
reads page by page under a rate limit (HubSpot's searches) begin in a thread of their own
(``_Prefetch``): its pages wait in memory and are stored only once this object is
committed, so nothing of the order above changes, but the scan no longer idles its rate
limit during the writes.

``stopping`` (SIGTERM) ends a cycle after the page or chunk in flight, committed.

``fence`` (the daemon's lease) is asked before each batch of remote writes, of at most
``write_batch`` changes, and inside each chunk's commit: a daemon that lost its lease
mid-cycle gets ``LeaseLostError`` there, writes and commits nothing more, and its
cycle ends. What it wrote and did not commit is the crash case below.

A crash after the remote writes and before the commit leaves the inbox rows in place:
the next cycle plans them again, and creates are upserts keyed on the partner id, so
nothing is created twice; a pair found again by the partner ids it holds is linked and
journaled as recovered (``syncd.state.commit``). ``syncd.harness.killsweep`` kills a real
process at such points.
"""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd import registry
from syncd.abc import Connector, Fence
from syncd.config.settings import ATTRIBUTION_RULES, Config, DealSettings, SlaSettings
from syncd.errors import SetupError
from syncd.model import Change, Cursor, Outcome, Page, Record, email_key
from syncd.state.commit import commit_chunk
from syncd.state.links import PRUNE_BATCH
from syncd.state.store import Store, record_from_row
from syncd.sync import (
    canonical,
    closed_loop,
    conversions,
    intake,
    killpoints,
    sla,
    sweeps,
    touches,
)
from syncd.sync import gate as crm_gate
from syncd.sync.committer import Committer
from syncd.sync.cycle import CycleReport, count, propagated
from syncd.sync.progress import Progress, Silent
from syncd.sync.reconcile import (
    CRM,
    MARKETING,
    LinkState,
    PairPlan,
    Rules,
    pair_group,
    plan_pair,
    settles,
)
from syncd.sync.sweeps import SweepPeriods

Clock = Callable[[], datetime]
PRUNE_EVERY = timedelta(hours=1)
"""How often the journal is searched for entries past their retention."""
PREFETCH_PAGES = 20
"""Pages of the next object's scan read ahead at most (HubSpot: 4,000 records, four
seconds of searches at five a second: early merges keep an object's last writes short).
Unthrottled, the scan outruns the writes and the queue stays full: it is memory."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Engine:
    """Runs cycles between one marketing system and one CRM over one store."""

    store: Store
    marketing: Connector
    crm: Connector
    rules: Mapping[str, Rules]
    """Per object, in the order a cycle runs them (companies, people, deals)."""
    clock: Clock = utcnow
    chunk: int = 1000
    before_commit: Callable[[], None] | None = None
    """Called after a chunk's remote writes, before its commit (tests crash here)."""
    attribution: Sequence[str] = ATTRIBUTION_RULES
    """Who hears of a deal's outcome (see ``syncd.sync.closed_loop``)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set to stop after the page or chunk in flight (committed) instead of the cycle."""
    blocked: tuple[str, ...] = ()
    """Blocking setup problems (``syncd.preflight.gate`` sets them): while any is set, a
    cycle that would write raises ``SetupError`` before reading anything."""
    sweeps: Mapping[str, SweepPeriods] = field(default_factory=dict)
    """Per system, how long a pass of each slow sweep takes (``syncd.sync.sweeps``)."""
    sweep_budget: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    """Per (system, object), the calls the sweeps may still spend (``syncd.sync.sweeps``)."""
    fence: Fence | None = None
    """The lease, asked before each write batch and in each commit (None: no daemon)."""
    journal_retention_days: int = 90
    """Journal entries older than this go, a bounded batch at a time (``_prune``)."""
    _next_prune: datetime | None = field(default=None, repr=False)
    write_batch: int = 200
    """With a fence, the changes a system gets per ``apply`` call (Salesforce's maximum)."""
    _prefetched: dict[tuple[str, str], _Prefetch] = field(default_factory=dict, repr=False)
    _folded: dict[str, frozenset[tuple[str, str, str]]] = field(default_factory=dict, repr=False)
    progress: Progress = field(default_factory=Silent)
    """Told of every page read and every chunk written (``syncd.sync.progress``)."""
    gate: crm_gate.Gate | None = None
    """Which unlinked marketing people are created in the CRM (``syncd.sync.gate``)."""
    handoff_stage: str | None = None
    """The person stage whose transitions are hand-offs: with a CRM that reads sales
    activities, each person cycle keeps the first touch of each (``syncd.sync.touches``).
    None: no activity is read."""
    sla: SlaSettings | None = None
    """What is written back for a hand-off past ``sla_hours`` untouched (``syncd.sync.sla``)."""
    sla_hours: float = 24.0
    deals: DealSettings = field(default_factory=DealSettings)
    """What the closed loop writes back beyond stages (``syncd.sync.outcomes``)."""

    @classmethod
    def for_config(
        cls, config: Config, store: Store, marketing: Connector, crm: Connector
    ) -> Engine:
        """An engine with the rules and attribution ``config`` sets."""
        report = config.syncd.report
        return cls(
            store,
            marketing,
            crm,
            registry.rules(config),
            attribution=config.syncd.deals.attribution,
            sweeps=registry.sweep_periods(config),
            journal_retention_days=config.syncd.journal_retention_days,
            gate=crm_gate.from_config(config),
            handoff_stage=report.handoff_stage if report.touches else None,
            sla=config.syncd.sla,
            sla_hours=report.speed_to_lead_sla_hours,
            deals=config.syncd.deals,
        )

    def run_once(
        self,
        obj: str | None = None,
        *,
        dry_run: bool = False,
        starting: Callable[[str], None] | None = None,
        finished: Callable[[str, CycleReport], None] | None = None,
    ) -> CycleReport:
        """One cycle of ``obj``, or of every object in order; the report sums them.
        ``starting`` and ``finished`` hear of each object's cycle (``syncd once`` keeps
        each in the store, as the daemon does its own).

        Raises ``SetupError`` while ``blocked`` holds problems, unless ``dry_run``."""
        if self.blocked and not dry_run:
            raise SetupError(list(self.blocked))
        report = CycleReport(uuid.uuid4().hex[:12], dry_run)
        names = [obj] if obj else list(self.rules)
        try:
            for index, name in enumerate(names):
                if self.stopping.is_set():
                    break
                self._fenced()
                part = CycleReport(report.cycle_id, dry_run)
                following = names[index + 1] if index + 1 < len(names) else None
                if starting is not None:
                    starting(name)
                self._run_object(name, part, dry_run, following)
                report.add(name, part)
                if finished is not None:
                    finished(name, part)
                self.store.checkpoint()  # SQLite: the log holds one object's cycle at most
        finally:
            self._drop_prefetched()
        if not dry_run:
            report.pruned = self._prune()
        return report

    def _prune(self) -> int:
        """A batch of journal entries past their retention. Finding them reads the journal
        from its oldest entry, so this runs once every ``PRUNE_EVERY``, and again at the
        next cycle while batches come back full."""
        now = self.clock()
        if self._next_prune is not None and now < self._next_prune:
            return 0
        pruned = self.store.prune_journal(now - timedelta(days=self.journal_retention_days))
        self._next_prune = now if pruned >= PRUNE_BATCH else now + PRUNE_EVERY
        return pruned

    def _run_object(
        self, obj: str, report: CycleReport, dry_run: bool, following: str | None = None
    ) -> None:
        folded = self._folded.pop(obj, None)
        if folded is None:
            folded = frozenset() if dry_run else sweeps.prepare(self, obj)
        activities = self._activities(obj, dry_run)
        if activities is not None:
            touches.plan(self.store, activities)
        self.progress.phase(obj, "reading")
        self.pull(obj, report, dry_run=dry_run)
        if not dry_run and not self.stopping.is_set():
            self.progress.phase(obj, "sweeping")
            before = dict(report.read)
            sweeps.run(self, obj, report, folded)
            for system, found in report.read.items():
                if found != before.get(system, 0):
                    self.progress.read(obj, system, found - before.get(system, 0))
        if self.stopping.is_set():  # what was read waits in the inbox for the next cycle
            return
        if following is not None:
            self._prefetch(following, dry_run)
        self.progress.phase(obj, "merging and writing")
        self._reconcile(obj, report, dry_run)
        if activities is not None and self.handoff_stage and not self.stopping.is_set():
            self.progress.phase(obj, "reading sales activities")
            found, kept = touches.read(self.store, activities, self.handoff_stage, self.clock())
            report.activities += found
            report.touches += kept
            if self.sla is not None and not self.stopping.is_set():
                self._fenced()
                done = sla.run(
                    self.store,
                    self.crm,
                    self.marketing,
                    self.sla,
                    stage=self.handoff_stage,
                    sla_hours=self.sla_hours,
                    now=self.clock(),
                    cycle_id=report.cycle_id,
                )
                report.sla_breaches += done.opened
                report.sla_tasks += done.tasks
                report.sla_flags += done.flags
                report.sla_cleared += done.cleared

    def _activities(self, obj: str, dry_run: bool) -> touches.ActivitySource | None:
        """The CRM as a source of sales activities, when this cycle reads them."""
        if obj != "person" or dry_run or self.handoff_stage is None:
            return None
        return touches.source(self.crm)

    def _prefetch(self, obj: str, dry_run: bool) -> None:
        """Begin the scans of ``obj`` that read page by page (connectors without a
        ``scan_ahead``), from their stored cursors, after handing them their sweep slices
        (``sweeps.prepare``, kept for ``obj``'s own turn)."""
        self._folded[obj] = frozenset() if dry_run else sweeps.prepare(self, obj)
        for connector in (self.marketing, self.crm):
            if getattr(connector, "scan_ahead", None) is not None:
                continue
            for kind in connector.kinds(obj):
                cursor = self.store.cursor(connector.system, kind)
                pages = connector.changes(kind, cursor)
                self._prefetched[(connector.system, kind)] = _Prefetch(pages, cursor)

    def _scan(self, connector: Connector, kind: str, cursor: Cursor) -> Iterator[Page]:
        """The pages of a scan from ``cursor``: those a prefetch began, if it began from
        that cursor, or a scan begun now."""
        ready = self._prefetched.pop((connector.system, kind), None)
        if ready is not None and ready.cursor == cursor:
            return ready.pages()
        if ready is not None:
            ready.cancel()
        return _ahead(connector.changes(kind, cursor))

    def _drop_prefetched(self) -> None:
        """Prefetches no pull took (the cycle stopped or failed): their pages go unread."""
        while self._prefetched:
            self._prefetched.popitem()[1].cancel()
        self._folded.clear()

    def remerge(self, obj: str, batches: Sequence[Sequence[Record]]) -> CycleReport:
        """Merge records read outside a scan (a resync): each batch of one system and
        kind goes to the inbox with its links, none settled as an echo, cursors kept."""
        if self.blocked:
            raise SetupError(list(self.blocked))
        report = CycleReport(uuid.uuid4().hex[:12])
        rules = self.rules[obj]
        for records in batches:
            if not records:
                continue
            system, kind = records[0].ref.system, records[0].ref.kind
            role = MARKETING if system == self.marketing.system else CRM
            connector = self.marketing if role == MARKETING else self.crm
            for start in range(0, len(records), self.chunk):
                chunk, refused = self.admit(obj, connector, records[start : start + self.chunk])
                links = self.store.links_for(obj, role, [r.ref.id for r in chunk])
                self.store.stage(
                    obj,
                    system,
                    kind,
                    chunk,
                    None,
                    links=links,
                    match=rules.match_field,
                    refused=refused,
                )
                report.refused[system] += len(refused)
            report.read[system] += len(records)
            self.progress.read(obj, system, len(records))
        self.progress.phase(obj, "merging and writing")
        self._reconcile(obj, report, False)
        return report

    def _reconcile(self, obj: str, report: CycleReport, dry_run: bool) -> None:
        """What the inbox holds of ``obj``: conversions, pairs, merge, writes, commits."""
        self._fenced()
        if not dry_run:
            conversions.apply(self, obj, report)
        self.store.assign_pairs(obj, self.marketing.system, self.crm.system)
        with Committer() as committer:
            self._merge(obj, report, committer, dry_run)
            if obj == "deal" and not dry_run and not self.stopping.is_set():
                committer.wait()  # the deals' history is stored before their people move
                self.progress.phase(obj, "closing the loop")
                closed_loop.apply(self, report, committer)

    def _merge(
        self,
        obj: str,
        report: CycleReport,
        committer: Committer,
        dry_run: bool,
        early: str | None = None,
    ) -> None:
        """Merge the inbox of ``obj``: linked groups, then unlinked ones. ``early`` (a
        system): only the unlinked groups holding a record of it (``_merge_early``)."""
        now = self.clock()
        rules = self.rules[obj]
        linked = self.store.inbox_groups(obj, linked=True, now=now, size=self.chunk)
        for groups in [] if early else linked:
            states = self.store.link_states([g[0].link_id for g in groups])
            records = self._records(rules, groups)
            items = []
            for rows in groups:
                link = states.get(rows[0].link_id)
                if link is None:  # the link went away since the rows were read
                    link = LinkState(None, None, None)
                m, c = self._sides(rows, records)
                items.append((plan_pair(f"link:{rows[0].link_id}", link, m, c, rules), rows))
            self.execute(obj, items, report, committer, dry_run)
            if self.stopping.is_set():
                return
        unlinked = self.store.inbox_groups(
            obj, linked=False, now=now, size=self.chunk, holding=early
        )
        for groups in unlinked:
            keys = [r.email_key for rows in groups for r in rows if r.email_key]
            # The chunk before may still be committing: its records count as linked.
            by_email = {**committer.pending, **self.store.links_by_email(obj, sorted(set(keys)))}
            records = self._records(rules, groups)
            items = []
            for rows in groups:
                ms = [records[r.id] for r in rows if r.system == self.marketing.system]
                cs = [records[r.id] for r in rows if r.system == self.crm.system]
                email = next((r.email_key for r in rows if r.email_key), None)
                pairs, duplicates = pair_group(ms, cs, by_email.get(email) if email else None)
                for m, c in pairs:
                    source = m or c
                    assert source is not None
                    link = LinkState(None, m.ref if m else None, c.ref if c else None)
                    used = [r for r in rows if r.record_id in {x.ref.id for x in (m, c) if x}]
                    plan = plan_pair(f"new:{source.ref}", link, m, c, rules)
                    held = None if plan.skip else self._gated(obj, m, c)
                    if held:  # nothing written: the person stays in marketing only
                        plan = PairPlan(plan.key, link, m, c, skip=held)
                    items.append((plan, used))
                for record in duplicates:
                    skip = PairPlan(
                        f"dup:{record.ref}",
                        LinkState(None, None, None),
                        record if record.ref.system == self.marketing.system else None,
                        record if record.ref.system == self.crm.system else None,
                        skip=f"duplicate: its {rules.match_field} belongs to a linked record",
                    )
                    row = next(r for r in rows if r.record_id == record.ref.id)
                    items.append((skip, [row]))
            self.execute(obj, items, report, committer, dry_run)
            if self.stopping.is_set():
                return

    def _gated(self, obj: str, m: Record | None, c: Record | None) -> str | None:
        """Why the gate keeps marketing person ``m``, paired with no CRM record, out of
        the CRM (None: it crosses, or is no create the gate decides)."""
        if self.gate is None or obj != "person" or m is None or c is not None or m.partner_id:
            return None
        return self.gate.held_back(m, self.rules[obj].vocabulary, self.marketing.system)

    def pull(self, obj: str, report: CycleReport, *, dry_run: bool = False) -> None:
        """Read both systems into the inbox, side by side (each waits on its own API)."""

        rules = self.rules[obj]
        staged = _Staged()

        def read(role: str, connector: Connector) -> tuple[int, int]:
            count = settled_count = 0
            scan_ahead = getattr(connector, "scan_ahead", None)  # one call for every kind
            if scan_ahead is not None:
                kinds = connector.kinds(obj)
                scan_ahead({kind: self.store.cursor(connector.system, kind) for kind in kinds})
            for kind in connector.kinds(obj):
                cursor = self.store.cursor(connector.system, kind)
                scan = _batched(self._scan(connector, kind, cursor), self.chunk)
                with closing(scan):  # ends the prefetch or read-ahead of a pull cut short
                    for page in scan:
                        records, refused = self.admit(obj, connector, page.records)
                        ids = [r.ref.id for r in records]
                        states = self.store.links_for(obj, role, ids)
                        resolved = canonical.resolve(self.store, rules, records)
                        settled = {
                            r.ref.id for r in resolved if self._settled(rules, r, states, role)
                        }
                        self._fenced()
                        self.store.stage(
                            obj,
                            connector.system,
                            kind,
                            records,
                            None if dry_run else page.cursor,
                            links=states,
                            settled=settled,
                            match=rules.match_field,
                            refused=() if dry_run else refused,
                        )
                        killpoints.reached("pull.page")
                        if role == MARKETING:
                            staged.add(len(records))
                        count += len(page.records)
                        self.progress.read(obj, connector.system, len(page.records))
                        settled_count += len(settled)
                        report.refused[connector.system] += len(refused)
                        if self.stopping.is_set():  # the page and its cursor are kept
                            return count, settled_count
            return count, settled_count

        sides = ((MARKETING, self.marketing), (CRM, self.crm))
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="pull") as pool:
            counts = [pool.submit(read, role, connector) for role, connector in sides]
            if not dry_run:
                counts[0].add_done_callback(lambda _: staged.add(0))
                self._merge_early(obj, report, counts[0], counts[1], staged)
            for (_, connector), answer in zip(sides, counts, strict=True):
                count, settled = answer.result()
                report.read[connector.system] += count
                report.unchanged += settled

    def _merge_early(
        self,
        obj: str,
        report: CycleReport,
        marketing: Future[tuple[int, int]],
        crm: Future[tuple[int, int]],
        staged: _Staged,
    ) -> None:
        """Merge new marketing records while the marketing scan goes on, once the CRM's
        scan is over: a backfill's merges and writes then overlap its rate-limited reads
        instead of following them.

        Only unlinked groups that hold a marketing record are merged early, each time the
        scan has stored a chunk more, or a quarter of what the CRM's scan stored if that is
        more (each round pairs the whole inbox again). Their group is complete: whatever
        the CRM holds of them that changed is in the inbox already (a partner by id or by
        email), and a marketing duplicate read later finds their new link by its email.
        Linked records, and CRM records alone (their marketing partner may come on a later
        page), wait for the merge after the scans, as do all records of a cycle with a
        conversion in it."""
        crm_rows = crm.result()[0]
        if self.store.converted_rows(obj):
            return
        every = max(self.chunk, crm_rows // 4)
        merged = 0
        while not self.stopping.is_set():
            rows = staged.wait_past(merged + every, marketing)
            if marketing.done() or self.stopping.is_set():
                return
            merged = rows
            self._fenced()
            self.store.assign_pairs(obj, self.marketing.system, self.crm.system)
            with Committer() as committer:
                self._merge(obj, report, committer, False, early=self.marketing.system)

    def admit(
        self, obj: str, connector: Connector, records: Sequence[Record]
    ) -> tuple[list[Record], list[intake.Refusal]]:
        """The records of ``connector`` the inbox can take, and the refused ones
        (``syncd.sync.intake``)."""
        other = self.crm if connector is self.marketing else self.marketing
        return intake.admit(
            records,
            match=self.rules[obj].match_field,
            partner=other.system,
            partner_id_problem=other.id_problem,
        )

    def _settled(
        self, rules: Rules, record: Record, states: Mapping[str, LinkState], role: str
    ) -> bool:
        """The record changes nothing: its link's base already holds all it says."""
        return settles(rules, record, states.get(record.ref.id), role)

    def _records(self, rules: Rules, groups: list[list[Any]]) -> dict[int, Record]:
        """The chunk's records by inbox row id, references resolved to links."""
        rows = [row for group in groups for row in group]
        records = canonical.resolve(self.store, rules, [record_from_row(row) for row in rows])
        return {row.id: record for row, record in zip(rows, records, strict=True)}

    def _sides(
        self, rows: Sequence[Any], records: Mapping[int, Record]
    ) -> tuple[Record | None, Record | None]:
        m = c = None
        for row in rows:
            record = records[row.id]
            if row.system == self.marketing.system:
                m = record
            else:
                c = record
        return m, c

    def execute(
        self,
        obj: str,
        items: list[tuple[PairPlan, list[Any]]],
        report: CycleReport,
        committer: Committer,
        dry_run: bool = False,
    ) -> set[str]:
        """Write one chunk's plans to both systems, then hand the chunk to the committer.

        Returns the keys of the plans a system refused (dead-lettered).
        """
        rules = self.rules[obj]
        targets = {MARKETING: self.marketing, CRM: self.crm}
        plans = canonical.to_native(self.store, rules, [plan for plan, _ in items], targets)
        items = [(plan, rows) for plan, (_, rows) in zip(plans, items, strict=True)]
        if dry_run:
            report.plans.extend(plans)
            self._count(obj, report, plans, {})
            return set()
        m_changes = [p.marketing_change for p in plans if p.marketing_change]
        c_changes = [p.crm_change for p in plans if p.crm_change]
        outcomes: dict[tuple[str, str], Outcome] = {}
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="write") as pool:
            writes = [
                (connector.system, pool.submit(self._apply, connector, changes))
                for connector, changes in ((self.crm, c_changes), (self.marketing, m_changes))
                if changes
            ]
            for system, answer in writes:
                for outcome in answer.result():
                    outcomes[(system, outcome.key)] = outcome
        killpoints.reached("write.landed")
        propagated(report, plans, outcomes, self.marketing.system, self.crm.system, self.clock())
        self._write_partner_ids(rules, plans, outcomes)
        self._count(obj, report, plans, outcomes)
        killpoints.reached("write.before_commit")
        if self.before_commit is not None:
            self.before_commit()
        pending = {}
        for plan in plans:
            key = email_key(plan.base.get(rules.match_field)) if rules.match_field else None
            if key and not plan.skip:
                pending[key] = plan.link
        committer.submit(
            pending,
            commit_chunk,
            self.store,
            obj,
            report.cycle_id,
            items,
            outcomes,
            self.marketing.system,
            self.crm.system,
            self.clock(),
            rules.match_field,
            self.fence,
        )
        return {
            plan.key
            for plan in plans
            for system, change in (
                (self.marketing.system, plan.marketing_change),
                (self.crm.system, plan.crm_change),
            )
            if change is not None and not outcomes.get((system, change.key), _MISSING).ok
        }

    def _count(
        self,
        obj: str,
        report: CycleReport,
        plans: list[PairPlan],
        outcomes: Mapping[tuple[str, str], Outcome],
    ) -> None:
        """Count a chunk's plans into ``report``, and tell ``progress`` what they added."""
        systems = (self.marketing.system, self.crm.system)
        before = [(report.created[s], report.updated[s], report.rejected[s]) for s in systems]
        count(report, plans, outcomes, *systems)
        for system, (created, updated, rejected) in zip(systems, before, strict=True):
            added = (
                report.created[system] - created,
                report.updated[system] - updated,
                report.rejected[system] - rejected,
            )
            if any(added):
                self.progress.wrote(obj, system, *added)

    def _write_partner_ids(
        self, rules: Rules, plans: list[PairPlan], outcomes: dict[tuple[str, str], Outcome]
    ) -> None:
        """Tell a record the id of the partner just created for it (one batch a side),
        unless its system waits for the next update syncd makes to it (``Rules.deferred``):
        the created record names it already, which is all pairing and recovery need."""
        for created_in, other, get_ref in (
            (self.crm, self.marketing, lambda p: p.link.marketing),
            (self.marketing, self.crm, lambda p: p.link.crm),
        ):
            if other.system in rules.deferred:
                continue
            follow: list[Change] = []
            for plan in plans:
                change = plan.crm_change if created_in is self.crm else plan.marketing_change
                outcome = outcomes.get((created_in.system, plan.key))
                ref = get_ref(plan)
                if change and change.op == "create" and outcome and outcome.ok and ref:
                    follow.append(
                        Change(
                            "update", ref.kind, "partner:" + plan.key, ref.id, partner_id=outcome.id
                        )
                    )
            if follow:
                for outcome in self._apply(other, follow):
                    outcomes[(other.system, outcome.key)] = outcome

    def _fenced(self) -> None:
        """Raise ``LeaseLostError`` if this daemon no longer holds the lease."""
        if self.fence is not None:
            self.fence.check()

    def _apply(self, connector: Connector, changes: Sequence[Change]) -> list[Outcome]:
        """``connector.apply``; with a fence, in batches each preceded by a lease check.

        The batches go by kind and operation, as the systems' batch calls do, so that
        cutting them adds no call where a batch would have been full anyway."""
        if self.fence is None:
            return connector.apply(changes)
        ordered = sorted(changes, key=lambda change: (change.kind, change.op))
        outcomes: list[Outcome] = []
        for start in range(0, len(ordered), self.write_batch):
            self.fence.check()
            outcomes.extend(connector.apply(ordered[start : start + self.write_batch]))
        return outcomes


_MISSING = Outcome("", False)


def _ahead(pages: Iterator[Page]) -> Iterator[Page]:
    """``pages``, the next one read in a thread of its own while the caller stores this
    one: a scan's calls then follow each other at the pace the rate limits allow (HubSpot:
    five searches a second), rather than waiting on each page's store in between. At most
    one page is read ahead; a scan the caller stops early has read one page more, which
    changes nothing (the cursor moves only with the pages stored)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, pages, None)
        while True:
            page = pending.result()
            if page is None:
                return
            pending = pool.submit(next, pages, None)
            yield page


class _Staged:
    """Records a scan has stored so far, for a merge waiting on them."""

    def __init__(self) -> None:
        self.rows = 0
        self._changed = threading.Condition()

    def add(self, rows: int) -> None:
        with self._changed:
            self.rows += rows
            self._changed.notify_all()

    def wait_past(self, rows: int, scan: Future[Any]) -> int:
        """Wait until ``rows`` are stored or ``scan`` ends; the rows stored then."""
        with self._changed:
            self._changed.wait_for(lambda: self.rows >= rows or scan.done())
            return self.rows


class _Prefetch:
    """The first pages of the next object's scan, read in a thread of its own while this
    object's merges and writes finish: the scan then starts at the pace the rate limits
    allow (HubSpot: five searches a second) instead of after the last write. Nothing is
    stored until the next object's pull takes the pages, in order, with their cursors;
    a cancelled prefetch (the cycle stopped, or failed) has read pages that nobody keeps,
    which changes nothing. At most ``PREFETCH_PAGES`` pages wait in memory."""

    def __init__(self, pages: Iterator[Page], cursor: Cursor) -> None:
        self.cursor = cursor
        self._pages = pages
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=PREFETCH_PAGES)
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._read, name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._cancelled.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            for page in self._pages:
                if not self._put(("page", page)):
                    return
            self._put(("end", None))
        except BaseException as error:  # handed to the pull, which raises it
            self._put(("error", error))
        finally:
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()

    def pages(self) -> Iterator[Page]:
        """The pages, in order, as the scan reads them; raises what the scan raised."""
        try:
            while True:
                what, value = self._queue.get()
                if what == "end":
                    return
                if what == "error":
                    raise value
                yield value
        finally:
            self.cancel()

    def cancel(self) -> None:
        self._cancelled.set()
        self._thread.join()


def _batched(pages: Iterator[Page], size: int) -> Generator[Page, None, None]:
    """Consecutive pages joined until they hold ``size`` records (one transaction each);
    a last page with no records still carries its cursor (a lookback that moved on)."""
    records: list[Record] = []
    kept: Page | None = None
    last: Page | None = None
    for page in pages:
        records.extend(page.records)
        last = page
        if len(records) >= size:
            kept = Page(records, page.cursor)
            yield kept
            records = []
    if last is not None and (records or kept is None or kept.cursor != last.cursor):
        yield Page(records, last.cursor)
