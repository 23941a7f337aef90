"""HubSpot writes: batch upserts, creates and updates, then associations.

Calls, per object type and operation, for each batch of at most ``batch_size`` (100)
changes:

- one ``POST /crm/v3/objects/{type}/batch/{upsert|create|update}``; creates with a
  partner id are upserts keyed on the partner-id property (``idProperty``), so that a
  replay finds what it created; every input carries ``objectWriteTraceId`` = the
  change's key, so one refused input does not fail a batch *create* (207). Update and
  upsert refuse the whole batch for one bad input (400/409): the batch is split in
  halves until each refused input stands alone (``syncd.sync.split``: about 2 x log2(100)
  = 14 calls more per refused input), so the others land in the same cycle;
- contacts only: one more of the same when the portal refused a backward lifecycle
  stage outright (the rest is written without the stage), then, for the contacts whose
  lifecycle stage HubSpot kept, one update clearing it and one setting it (and one
  restoring the old stage if the set fails);

then, once for the whole ``apply``, for each (object type, associated type) with ids to
add on records written successfully: one v4 batch create per 1,000 associations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from connectors.hubspot.associations import Associations, Call
from connectors.hubspot.errors import HubSpotRequestError
from connectors.hubspot.mapping import OBJECT_TYPES, ObjectMapping, chunked
from syncd.model import Change, Outcome
from syncd.sync.split import Refused, Splitter

LIFECYCLE = "lifecyclestage"
MODELS = {
    "create": "BatchInputSimplePublicObjectBatchInputForCreate",
    "update": "BatchInputSimplePublicObjectBatchInput",
    "upsert": "BatchInputSimplePublicObjectBatchInputUpsert",
}
"""The client's input model of each batch write (each object type's package has them)."""
MISSING = "HubSpot returned no result for this input"


class ObjectWriter:
    """``apply`` for the connector: one outcome per change, writes batched per type."""

    def __init__(
        self,
        *,
        batch_apis: Mapping[str, Any],
        packages: Mapping[str, Any],
        mappings: Mapping[str, ObjectMapping],
        associations: Associations,
        call: Call,
        batch_size: int,
        splitter: Splitter,
    ) -> None:
        self._batch_apis, self._packages = batch_apis, packages
        self._mappings, self._associations = mappings, associations
        self._call, self.batch_size = call, batch_size
        self._splitter = splitter

    def apply(self, changes: Sequence[Change]) -> list[Outcome]:
        unknown = sorted({c.kind for c in changes} - set(self._mappings))
        if unknown:
            raise ValueError(f"the HubSpot connector does not write {', '.join(unknown)}")
        outcomes: dict[str, Outcome] = {}
        for kind in OBJECT_TYPES:
            mine = [c for c in changes if c.kind == kind]
            if mine:
                self._write(kind, mine, outcomes)
        self._associate(changes, outcomes)
        return [
            outcomes.get(c.key) or Outcome(c.key, False, c.id, error=MISSING, code="MISSING_RESULT")
            for c in changes
        ]

    def mark(self, kind: str, ids: Sequence[str], properties: Mapping[str, str]) -> list[Outcome]:
        """Set ``properties`` on the records ``ids`` (batch updates of 100), outside the
        field mapping (syncd's own flags); one outcome per id, keyed by the id."""
        outcomes: dict[str, Outcome] = {}
        inputs = [
            {"id": id_, "properties": dict(properties), "objectWriteTraceId": id_} for id_ in ids
        ]
        for start in range(0, len(inputs), self.batch_size):
            outcomes.update(self._send(kind, "update", inputs[start : start + self.batch_size]))
        return [outcomes.get(id_) or Outcome(id_, False, id_, error="no answer") for id_ in ids]

    def _write(self, kind: str, changes: Sequence[Change], outcomes: dict[str, Outcome]) -> None:
        groups = (
            ("upsert", [c for c in changes if c.op == "create" and c.partner_id]),
            ("create", [c for c in changes if c.op == "create" and not c.partner_id]),
            ("update", [c for c in changes if c.op == "update"]),
        )
        for op, group in groups:
            for chunk in chunked(group, self.batch_size, lambda c: c.partner_id or c.id or c.key):
                outcomes.update(self._send(kind, op, [self._input(op, c) for c in chunk]))
                if kind != "contacts":
                    continue
                # A portal may refuse a backward lifecycle move instead of keeping the old
                # stage: write the rest, and let _settle_stages clear and set the stage.
                refused = [
                    replace(c, stage={f: v for f, v in c.stage.items() if f != LIFECYCLE})
                    for c in chunk
                    if c.stage.get(LIFECYCLE) and _refused_stage(outcomes[c.key])
                ]
                if refused:
                    outcomes.update(self._send(kind, op, [self._input(op, c) for c in refused]))
        if kind == "contacts":
            self._settle_stages(changes, outcomes)

    def _input(self, op: str, change: Change) -> dict[str, Any]:
        mapping = self._mappings[change.kind]
        item: dict[str, Any] = {
            "properties": mapping.properties(change),
            "objectWriteTraceId": change.key,
        }
        if op == "upsert":
            item.update(id=change.partner_id, idProperty=mapping.partner_field)
        elif op == "update":
            item["id"] = change.id
        else:
            item["associations"] = []  # added afterwards through v4, as for updates
        return item

    def _send(self, kind: str, op: str, inputs: list[dict[str, Any]]) -> dict[str, Outcome]:
        """One batch write (split while refused as a whole); an outcome per input, keyed
        by its objectWriteTraceId."""
        label = f"POST /crm/v3/objects/{kind}/batch/{op}"
        model = getattr(self._packages[kind], MODELS[op])
        write = getattr(self._batch_apis[kind], op)

        def send(part: list[dict[str, Any]]) -> dict[str, Any]:
            return self._call(label, partial(write, model(inputs=part)))

        outcomes: dict[str, Outcome] = {}
        for sent in self._splitter.send(inputs, send, HubSpotRequestError, about_inputs):
            if isinstance(sent, Refused):
                error = sent.error
                assert isinstance(error, HubSpotRequestError)
                key = sent.item["objectWriteTraceId"]
                outcomes[key] = _refused(op, sent.item, error.detail, error.category)
            else:
                outcomes.update(self._read_answer(kind, op, sent.items, sent.answer))
        return outcomes

    def _read_answer(
        self, kind: str, op: str, inputs: list[dict[str, Any]], answer: dict[str, Any]
    ) -> dict[str, Outcome]:
        """The outcome of each input a batch answer (200, 201 or 207) names."""
        mapping = self._mappings[kind]
        by_id = {str(i.get("id")): i["objectWriteTraceId"] for i in inputs}
        outcomes: dict[str, Outcome] = {}
        for result in answer.get("results") or []:
            props = result.get("properties") or {}
            matched = props.get(mapping.partner_field) if op == "upsert" else result.get("id")
            key = result.get("objectWriteTraceId") or by_id.get(str(matched))
            if key is not None:
                created = bool(result.get("new")) if op == "upsert" else op == "create"
                stage = mapping.stage_of(props)
                outcomes[key] = Outcome(key, True, str(result["id"]), created, stage=stage)
        items = {i["objectWriteTraceId"]: i for i in inputs}
        for error in answer.get("errors") or []:
            traces = (error.get("context") or {}).get("objectWriteTraceId") or [
                error.get("objectWriteTraceId")
            ]
            for key in traces:
                if key in items:
                    message = str(error.get("message") or "refused")
                    outcomes[key] = _refused(op, items[key], message, error.get("category"))
        return outcomes

    def _settle_stages(self, changes: Iterable[Change], outcomes: dict[str, Outcome]) -> None:
        """Move stages HubSpot kept (a lifecycle stage cannot go backwards): clear, then set."""
        stuck: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {}  # id, wanted, held
        for change in changes:
            outcome = outcomes.get(change.key)
            if outcome is None or not outcome.ok or outcome.id is None:
                continue
            wanted = {f: v for f, v in change.stage.items() if v and outcome.stage.get(f) != v}
            if wanted:
                held = {f: outcome.stage.get(f, "") for f in wanted}
                stuck[change.key] = (outcome.id, wanted, held)
        keys = list(stuck)
        for start in range(0, len(keys), self.batch_size):
            chunk = keys[start : start + self.batch_size]
            blank = [_stage_input(k, stuck[k][0], dict.fromkeys(stuck[k][1], "")) for k in chunk]
            cleared = self._send("contacts", "update", blank)
            chunk = [k for k in chunk if _settled(k, cleared.get(k), outcomes, stuck[k][1])]
            if not chunk:
                continue
            moved = self._send(
                "contacts", "update", [_stage_input(k, *stuck[k][:2]) for k in chunk]
            )
            lost = [k for k in chunk if not _settled(k, moved.get(k), outcomes, {})]
            if lost:  # put back what HubSpot held rather than leave the stage blank
                restore = [_stage_input(k, stuck[k][0], stuck[k][2]) for k in lost]
                for key, result in self._send("contacts", "update", restore).items():
                    if result.ok:
                        stage = {**outcomes[key].stage, **result.stage}
                        outcomes[key] = replace(outcomes[key], stage=stage)

    def _associate(self, changes: Sequence[Change], outcomes: dict[str, Outcome]) -> None:
        """Add the associations of every change whose object write landed.

        A refused association fails its change with HubSpot's message; the outcome keeps
        the id and ``created``, because the object itself was written.
        """
        wanted: dict[tuple[str, str], list[tuple[str, str, str]]] = {}  # key, from id, to id
        for change in changes:
            outcome = outcomes.get(change.key)
            if outcome is None or not outcome.ok or outcome.id is None:
                continue
            for to_type, ids in self._mappings[change.kind].links_to_add(change).items():
                pairs = wanted.setdefault((change.kind, to_type), [])
                pairs.extend((change.key, outcome.id, to_id) for to_id in ids)
        for (from_type, to_type), pairs in wanted.items():
            refused = self._associations.add(from_type, to_type, [(f, t) for _, f, t in pairs])
            for key, from_id, to_id in pairs:
                refusal = refused.get((from_id, to_id))
                if refusal is not None and outcomes[key].ok:
                    outcomes[key] = replace(
                        outcomes[key], ok=False, error=refusal.message, code=refusal.code
                    )


def about_inputs(error: Exception, batch: Sequence[Any]) -> bool:
    """Whether a batch refused as a whole may be about some of its inputs (worth
    splitting): not when it is about the key property itself ("Unable to perform
    update/upsert by non-unique ... property"), which every input shares."""
    return "non-unique" not in str(getattr(error, "detail", error))


def _refused_stage(outcome: Outcome | None) -> bool:
    """Whether HubSpot refused a write for its lifecycle stage (not for a bad option)."""
    error = outcome.error or "" if outcome and not outcome.ok else ""
    return LIFECYCLE in error and "allowed options" not in error


def _refused(op: str, item: Mapping[str, Any], message: str, code: str | None) -> Outcome:
    record_id = item.get("id") if op == "update" else None
    return Outcome(item["objectWriteTraceId"], False, record_id, error=message, code=code)


def _stage_input(key: str, id_: str, stage: Mapping[str, str]) -> dict[str, Any]:
    return {"id": id_, "objectWriteTraceId": key, "properties": dict(stage)}


def _settled(
    key: str, result: Outcome | None, outcomes: dict[str, Outcome], cleared: Mapping[str, str]
) -> bool:
    """Fold a stage write's result into the change's outcome; True if it landed."""
    before = outcomes[key]
    if result is not None and result.ok:
        stage = {f: v for f, v in {**before.stage, **result.stage}.items() if f not in cleared}
        outcomes[key] = Outcome(key, True, before.id, before.created, stage=stage)
        return True
    error = result.error if result else "HubSpot returned no result for the stage write"
    code = result.code if result else "MISSING_RESULT"
    outcomes[key] = Outcome(key, False, before.id, before.created, error, code, before.stage)
    return False
