"""The gate on what reaches the CRM: which unlinked marketing people are created there.

``gate:`` of syncd.yaml (``GateSettings``) sets up to three conditions, all of which must
hold (AND): a minimum stage (in stages.yaml's order, recycle stages never pass), marketing
properties that must hold given values (``sync_to_crm: "true"``) and a minimum score. A
person who fails one is *held back*: not created in the CRM, counted, journaled with the
reasons (``syncd explain``) and kept in the store's ``gate_held`` table until they pass.

The gate decides creates only. A person already linked, or one the CRM already holds
(paired by partner id or email), keeps syncing whatever the gate says: the gate stands
in front of storage and reps' attention, not in front of records sales already has.

Crossing needs nothing special: a held person changes in the marketing system (their
stage, score or property moves), so the incremental scan reads them again and the gate
is asked again; ``syncd resync`` re-reads them as well.

The properties a condition reads come to the merge as record fields: through the
canonical field that fields.yaml maps to that property, or, where none does, under a
hidden name (``HIDDEN`` + property) that the connector reads and the merge never syncs
(``hidden_fields``, added to the marketing connector's field map by the registry).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from syncd.config.settings import Config, GateSettings
from syncd.model import FieldType, Record
from syncd.sync.vocabulary import Vocabulary

HIDDEN = "~gate:"
"""Prefix of the record field holding a gate property fields.yaml does not map."""
PREFIX = "gate: "
"""How the skip reason of a person held back by the gate starts."""


@dataclass(frozen=True, slots=True)
class Gate:
    """The gate's conditions, with each property resolved to the record field holding it."""

    min_stage: str | None = None
    equals: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Record field -> (property, wanted value)."""
    min_score: float | None = None
    score: tuple[str, str] | None = None
    """(record field, property) of the score."""

    @property
    def empty(self) -> bool:
        return self.min_stage is None and not self.equals and self.min_score is None

    def reasons(self, record: Record, vocabulary: Vocabulary | None, system: str) -> list[str]:
        """Why ``record`` may not be created in the CRM (empty: it passes)."""
        found: list[str] = []
        if self.min_stage is not None:
            found += _stage_reasons(record, vocabulary, system, self.min_stage)
        for name, (prop, wanted) in self.equals.items():
            held = record.fields.get(name)
            if (held or "").strip().casefold() != wanted.strip().casefold():
                found.append(f"{prop} is {_shown(held)}, not {wanted!r}")
        if self.min_score is not None and self.score is not None:
            name, prop = self.score
            score = _number(record.fields.get(name))
            if score is None or score < self.min_score:
                shown = _shown(record.fields.get(name)) if score is None else _plain(score)
                found.append(f"{prop} {shown} < {_plain(self.min_score)}")
        return found

    def held_back(self, record: Record, vocabulary: Vocabulary | None, system: str) -> str | None:
        """The skip reason of a person the gate holds back, or None."""
        found = self.reasons(record, vocabulary, system)
        return PREFIX + "; ".join(found) if found else None


def _stage_reasons(
    record: Record, vocabulary: Vocabulary | None, system: str, min_stage: str
) -> list[str]:
    if vocabulary is None:
        return [f"no stage vocabulary to place it against {min_stage}"]
    stage = vocabulary.to_canonical(system, record.stage) if any(record.stage.values()) else None
    if stage is None:
        return [f"it holds no stage of the vocabulary ({dict(record.stage) or 'none'})"]
    rank, wanted = vocabulary.rank(stage), vocabulary.rank(min_stage)
    if rank is None:
        return [f"stage {stage} is a recycle stage"]
    if wanted is not None and rank < wanted:
        return [f"stage {stage} is before {min_stage}"]
    return []


def _number(value: str | None) -> float | None:
    try:
        return float(Decimal(value.strip())) if value else None
    except InvalidOperation:
        return None


def _plain(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


def _shown(value: str | None) -> str:
    return "blank" if value is None or not value.strip() else repr(value)


def field_for(config: Config, prop: str) -> str:
    """The person record field that holds marketing property ``prop``."""
    marketing = config.syncd.marketing
    for name, rule in config.fields.get("person", {}).items():
        if rule.native().get(marketing) == prop:
            return name
    return HIDDEN + prop


def from_config(config: Config) -> Gate | None:
    """The gate ``config`` sets; None when it sets none (everyone crosses)."""
    settings: GateSettings | None = config.syncd.gate
    if settings is None:
        return None
    gate = Gate(
        settings.min_stage,
        {
            field_for(config, prop): (prop, value)
            for prop, value in settings.property_equals.items()
        },
        settings.min_score,
        (field_for(config, settings.score_property), settings.score_property)
        if settings.min_score is not None
        else None,
    )
    return None if gate.empty else gate


def hidden_fields(config: Config) -> dict[str, tuple[str, FieldType]]:
    """The hidden record fields the marketing connector must read for the gate:
    name -> (property, type). Properties fields.yaml maps are read as those fields."""
    gate = from_config(config)
    if gate is None:
        return {}
    hidden: dict[str, tuple[str, FieldType]] = {
        name: (prop, "string") for name, (prop, _) in gate.equals.items() if name.startswith(HIDDEN)
    }
    if gate.score is not None and gate.score[0].startswith(HIDDEN):
        hidden[gate.score[0]] = (gate.score[1], "number")
    return hidden


def config_key(config: Config, name: str) -> list[str | int]:
    """Where in syncd.yaml the gate names the property of hidden field ``name``."""
    prop = name.removeprefix(HIDDEN)
    settings = config.syncd.gate
    if settings is not None and prop in settings.property_equals:
        return ["gate", "property_equals", prop]
    return ["gate", "score_property"]
