"""The shared stage vocabulary: translate native stage values to canonical stages and back.

Stages are listed in funnel order. A stage marked ``recycle`` stands outside that order:
any stage may move into it and out of it (a recycled lead is re-qualified later); every
other move goes forward only.

Reading native values: a stage matches fully when all its native fields hold its values,
partly when its first field does (better when the others are blank than when they hold
other values); full beats partial, more fields beat fewer. The current stage is kept
when it still matches fully and nothing matches better: several stages may share one
native value (HubSpot's ``subscriber`` and ``lead`` are both "Open - Not Contacted" in
Salesforce), and that must not read as a move. Otherwise, among the stages that match
equally well, the admin's reading table decides (``read`` in stages.yaml: the stage a
shared value reads as, or write-only: the current stage is kept), else the earliest.
A value under ``ignore`` reads as no stage, as does a value no stage holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from syncd.config.settings import StageDef
from syncd.config.stage_reading import StageReading

MAPPED, WRITE_ONLY, IGNORED, UNMAPPED = "mapped", "write-only", "ignored", "unmapped"
"""What a native value is to a vocabulary (``Vocabulary.classify``)."""


class Vocabulary:
    """The ordered stages of one object."""

    def __init__(
        self,
        stages: Sequence[StageDef],
        moves: str = "forward",
        reading: StageReading | None = None,
    ) -> None:
        self.stages = tuple(stages)
        self.moves = moves
        self.reading = reading or StageReading()
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

        A full match beats a partial one. The current stage is kept while it matches
        fully and nothing matches better. Among stages that match equally well, the
        reading table decides (a write-only value keeps ``current``), else the earliest:
        a new Salesforce lead in "Open - Not Contacted" never reads as a later stage
        that shares it. Ignored and unmapped values read as None.
        """
        key = (system, tuple(sorted(native.items())), current)
        if key not in self._read:
            self._read[key] = self._read_stage(system, native, current)
        return self._read[key]

    def classify(self, system: str, native: Mapping[str, str]) -> str:
        """MAPPED, WRITE_ONLY, IGNORED or UNMAPPED: what ``native`` is to this vocabulary."""
        if self.reading.ignored(system, native) is not None:
            return IGNORED
        tied, _ = self._best(system, native)
        if not tied:
            return UNMAPPED
        return WRITE_ONLY if self._chosen(system, native, tied) is None else MAPPED

    def _best(self, system: str, native: Mapping[str, str]) -> tuple[list[str], tuple[int, int]]:
        """The stages matching ``native`` best, in funnel order, and their score."""
        tied: list[str] = []
        best_score = (0, 0)
        for stage in self.stages:
            score = self._score(system, stage.name, native)
            if score[0] and score > best_score:
                tied, best_score = [stage.name], score
            elif score[0] and score == best_score:
                tied.append(stage.name)
        return tied, best_score

    def _chosen(self, system: str, native: Mapping[str, str], tied: Sequence[str]) -> str | None:
        """Which of ``tied`` the value reads as: the table's choice, else the earliest.

        None: the table marks the value write-only (it reads as no stage).
        """
        wanted = self._by_name[tied[0]].values.get(system, {})
        for name in wanted:
            key = (system, name, native.get(name, ""))
            if key in self.reading.read and all(
                self._by_name[t].values.get(system, {}).get(name) == key[2] for t in tied
            ):
                target = self.reading.read[key]
                if target is None or target in tied:
                    return target
        return tied[0]

    def _read_stage(
        self, system: str, native: Mapping[str, str], current: str | None
    ) -> str | None:
        if self.reading.ignored(system, native) is not None:
            return None
        tied, best_score = self._best(system, native)
        if not tied:
            return None
        if current in self._by_name:
            current_score = self._score(system, current, native)
            if current_score[0] == 3 and current_score >= best_score:
                return current
        chosen = self._chosen(system, native, tied)
        return current if chosen is None else chosen

    def read_table(self, system: str) -> list[tuple[str, str, str]]:
        """(native values, reads as, why) for every distinct native value of ``system``:
        what a record holding it reads as the first time syncd sees it."""
        rows: list[tuple[str, str, str]] = []
        seen: set[tuple[tuple[str, str], ...]] = set()
        for stage in self.stages:
            native = stage.values.get(system, {})
            key = tuple(native.items())
            if not native or key in seen:
                continue
            seen.add(key)
            shared = [s.name for s in self.stages if s.values.get(system) == native]
            reads = self.to_canonical(system, native)
            why = f"shared by {', '.join(shared)}" if len(shared) > 1 else ""
            if any(k in self.reading.read for k in ((system, f, v) for f, v in key)):
                why = "; ".join(x for x in (why, "as stages.yaml reads it") if x)
            elif len(shared) > 1:
                why += ": the earliest"
            text = ", ".join(f"{f}={v}" for f, v in key)
            rows.append((text, reads or WRITE_ONLY, why or "its own value"))
        for (sys_, name), values in sorted(self.reading.ignore.items()):
            if sys_ == system:
                rows.extend((f"{name}={v}", IGNORED, "left alone") for v in sorted(values))
        return rows

    def check_coverage(
        self, system: str, live: Sequence[Mapping[str, str]]
    ) -> list[tuple[str, str, str]]:
        """(field, value, where) for each live native value neither mapped nor ignored.

        ``live`` holds the system's native stage values (a HubSpot deal stage with its
        pipeline, a Salesforce Lead.Status); those naming no field of this vocabulary
        belong to another object. A value of a later field no stage holds (a HubSpot
        pipeline) is reported once, not once per stage in it.
        """
        fields = self.fields(system)
        held = {(f, v) for s in self.stages for f, v in s.values.get(system, {}).items()}
        missing: list[tuple[str, str, str]] = []
        for native in live:
            if not native or not set(native) <= set(fields):
                continue
            if self.reading.ignored(system, native) is not None:
                continue
            first, *later = sorted(native, key=fields.index)
            outer = [(f, native[f]) for f in later if (f, native[f]) not in held]
            if outer:
                entry = (outer[0][0], outer[0][1], "")
            elif any(self._score(system, s.name, native)[0] == 3 for s in self.stages):
                continue
            else:
                where = ", ".join(f"{f} {native[f]}" for f in later)
                entry = (first, native[first], f" ({where})" if where else "")
            if entry not in missing:
                missing.append(entry)
        return missing

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
