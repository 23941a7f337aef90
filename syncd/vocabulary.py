"""The shared stage vocabulary: translate native stage values to canonical stages and back.

Stages are listed in funnel order. A stage marked ``recycle`` stands outside that order:
any stage may move into it and out of it (a recycled lead is re-qualified later); every
other move goes forward only.

Reading native values: a stage matches fully when all its native fields hold its values,
partly when its first field does (better when the others are blank than when they hold
other values); full beats partial, more fields beat fewer. The current stage is kept
when it still matches fully and nothing matches better: several stages may share one
native value (HubSpot's ``subscriber`` and ``lead`` are both "Open - Not Contacted" in
Salesforce), and that must not read as a move.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from syncd.settings import StageDef


class Vocabulary:
    """The ordered stages of one object."""

    def __init__(self, stages: Sequence[StageDef], moves: str = "forward") -> None:
        self.stages = tuple(stages)
        self.moves = moves
        self._by_name = {s.name: s for s in self.stages}
        linear = [s.name for s in self.stages if not s.recycle]
        self._rank = {name: i for i, name in enumerate(linear)}
        self._read: dict[tuple[str, tuple[tuple[str, str], ...], str | None], str | None] = {}
        self._native: dict[tuple[str, str], dict[str, str]] = {}

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def is_recycle(self, name: str) -> bool:
        return self._by_name[name].recycle

    def stage(self, name: str) -> StageDef | None:
        return self._by_name.get(name)

    def rank(self, name: str) -> int | None:
        """Position in the funnel; None for recycle stages."""
        return self._rank.get(name)

    def allows(self, current: str | None, target: str) -> bool:
        """Forward-only (unless moves are ``any``), except into and out of a recycle stage."""
        if self.moves == "any" or current is None or current == target:
            return True
        if current not in self._by_name:
            return True
        if self.is_recycle(target) or self.is_recycle(current):
            return True
        return (self._rank[target]) >= self._rank[current]

    def fields(self, system: str) -> list[str]:
        names: list[str] = []
        for stage in self.stages:
            names.extend(k for k in stage.values.get(system, {}) if k not in names)
        return names

    def to_native(self, system: str, name: str) -> dict[str, str]:
        """The native values for ``name``; the system's other stage fields cleared ("")."""
        key = (system, name)
        if key not in self._native:
            native = self._by_name[name].values.get(system, {})
            self._native[key] = {f: native.get(f, "") for f in self.fields(system)}
        return dict(self._native[key])

    def _score(self, system: str, name: str, native: Mapping[str, str]) -> tuple[int, int]:
        """(tier, fields matched) of ``native`` for stage ``name``; tier 0: no match.

        Tier 3: every field holds the stage's value. Tier 2: the first field does and the
        others are blank. Tier 1: the first field does and another holds something else
        (HubSpot's lifecycle stage decides; its lead status only refines).
        """
        wanted = self._by_name[name].values.get(system, {})
        if not wanted:
            return (0, 0)
        first = next(iter(wanted))
        if native.get(first) != wanted[first]:
            return (0, 0)
        matched, contradicted = 0, False
        for field, value in wanted.items():
            held = native.get(field)
            matched += held == value
            contradicted = contradicted or bool(held and held != value)
        if matched == len(wanted):
            return (3, matched)
        return (1 if contradicted else 2, matched)

    def to_canonical(
        self, system: str, native: Mapping[str, str], current: str | None = None
    ) -> str | None:
        """The canonical stage that ``native`` values mean, given the current stage.

        A full match beats a partial one; among equal full matches the first one after the
        current stage wins (a converted lead, "Closed - Converted", moves an MQL on to
        opportunity, not to evangelist), else the later stage (Salesforce "Open - Not
        Contacted" reads as lead rather than subscriber); among equal partial ones the
        earlier (a HubSpot sales-qualified lead with no lead status reads as the first such
        stage, never promoted further).
        """
        key = (system, tuple(sorted(native.items())), current)
        if key not in self._read:
            self._read[key] = self._read_stage(system, native, current)
        return self._read[key]

    def _read_stage(
        self, system: str, native: Mapping[str, str], current: str | None
    ) -> str | None:
        best, best_score = None, (0, 0)
        tied: list[str] = []
        for stage in self.stages:
            score = self._score(system, stage.name, native)
            if score[0] and (score > best_score or (score == best_score and score[0] == 3)):
                tied = [*tied, stage.name] if score == best_score else [stage.name]
                best, best_score = stage.name, score
        ahead = self._next_after(current, tied)
        if ahead is not None and self._score(system, current or "", native) < best_score:
            best = ahead
        if current in self._by_name and best is not None:
            current_score = self._score(system, current, native)
            if current_score[0] == 3 and current_score >= best_score:
                return current
        return best

    def _next_after(self, current: str | None, names: Sequence[str]) -> str | None:
        """The first of ``names`` after ``current`` in the funnel (a step, not a leap)."""
        rank = self.rank(current) if current in self._by_name else None
        if rank is None or len(names) < 2:
            return None
        ahead = [n for n in names if (self.rank(n) or -1) > rank]
        return min(ahead, key=lambda n: self.rank(n) or 0) if ahead else None

    def check_outcomes(
        self, system: str, outcomes: Mapping[tuple[str, str], str]
    ) -> list[tuple[str, str]]:
        """(stage, problem) where a stage's outcome disagrees with what the system says.

        ``outcomes`` maps (field, value) to "won" or "lost" for the closed values
        (Salesforce ``IsClosed``/``IsWon``; HubSpot closed pipeline stages).
        """
        problems = []
        for stage in self.stages:
            values = stage.values.get(system, {})
            said = {outcomes[item] for item in values.items() if item in outcomes}
            held = next(iter(said)) if said else None
            if held != stage.outcome:
                problems.append(
                    (
                        stage.name,
                        f"{system} says {dict(values)} is {held or 'open'},"
                        f" the vocabulary says {stage.outcome or 'open'}",
                    )
                )
        return problems

    def check_picklists(
        self, system: str, picklists: Mapping[str, frozenset[str]]
    ) -> list[tuple[str, str, str]]:
        """(stage, field, value) triples whose value the live system does not offer."""
        missing = []
        for stage in self.stages:
            for field, value in stage.values.get(system, {}).items():
                allowed = picklists.get(field)
                if allowed is not None and value not in allowed:
                    missing.append((stage.name, field, value))
        return missing
