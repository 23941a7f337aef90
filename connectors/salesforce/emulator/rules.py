"""The org's own rules, as an admin sets them up: validation rules, duplicate rules and
required fields (the integration user's field-level security is ``emulator_access``'s;
``set_read_only`` switches it there).

Each refuses one record of a write with the save-result error the real API gives; the
other records of an sObject Collection (``allOrNone: false``) are saved. Switch them with
``SalesforceEmulator.add_validation_rule``, ``add_duplicate_rule``, ``set_read_only``,
``set_required`` and ``clear_rules``, or ``POST /_emulator/rules`` (``emulator_control``).

What the real API does, and where it is written:

- A validation rule whose error condition holds refuses the save with
  ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` and the rule's error message; ``fields`` names
  the error location's field (empty when the message shows at the top of the page).
  The code is the one API-NOTES.md gives; no public page found here shows a whole REST
  answer for it, so its shape follows the other save-result errors.
- A duplicate rule refuses a create or update matching a live record with
  ``DUPLICATES_DETECTED``, message "Use one of these records?" and a ``duplicateResult``
  naming the rule and the matches (https://salesforcedictionary.com/errors/duplicates-detected-api;
  DuplicateError in https://developer.salesforce.com/docs/atlas.en-us.258.0.api.meta/api/sforce_api_objects_duplicateerror.htm).
  A rule whose action is "Alert" lets the save through when the request carries
  ``Sforce-Duplicate-Rule-Header: allowSave=true`` (fields separated by "; ", default
  false, API 52.0+: https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_duplicaterules.htm);
  a "Block" rule refuses either way.
- A field the integration user may read but not edit (field-level security) is
  ``createable``/``updateable`` false in describe, and a write naming it is refused with
  ``INVALID_FIELD_FOR_INSERT_UPDATE`` "Unable to create/update fields: X. Please check
  the security settings of this field ...".
- A required field left blank: ``REQUIRED_FIELD_MISSING`` "Required fields are missing:
  [X]"; describe shows it ``nillable`` false.

Not confirmed from a public page: the exact ``duplicateResult`` keys the REST answer
carries for a collection (the dictionary page above shows them for a single save), and
whether a Block rule's ``allowSave`` is reported false.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.salesforce.emulator.schema import SObject, error

HEADER = "Sforce-Duplicate-Rule-Header"


@dataclass(frozen=True, slots=True)
class ValidationRule:
    """Refuses a record of ``obj`` whose ``field`` (as saved) fully matches ``pattern``
    ("" matches a blank value)."""

    name: str
    obj: str
    field: str
    pattern: str
    message: str

    def refuses(self, row: Mapping[str, Any]) -> bool:
        value = row.get(self.field)
        text = "" if value is None else str(value)
        return re.fullmatch(self.pattern, text) is not None


@dataclass(frozen=True, slots=True)
class DuplicateRule:
    """Refuses a record of ``obj`` whose ``fields`` all equal (ignoring case, none blank)
    those of another live record; ``action`` "alert" yields to allowSave, "block" never."""

    name: str
    obj: str
    fields: tuple[str, ...]
    action: str = "alert"

    def key(self, row: Mapping[str, Any]) -> tuple[str, ...] | None:
        values = tuple(str(row.get(f) or "").strip().lower() for f in self.fields)
        return None if not all(values) else values


@dataclass
class OrgRules:
    """Every rule of the org; empty (nothing refused) until a test adds some."""

    validation: list[ValidationRule] = field(default_factory=list)
    duplicates: list[DuplicateRule] = field(default_factory=list)
    required: set[tuple[str, str]] = field(default_factory=set)

    def clear(self) -> None:
        self.validation.clear()
        self.duplicates.clear()
        self.required.clear()

    def field_errors(
        self, obj: SObject, values: Mapping[str, Any], *, creating: bool, system: bool
    ) -> list[dict[str, Any]]:
        """Required fields left blank by this request."""
        if system:
            return []
        errors = []
        named = {(f.name if (f := obj.field(k)) else k): v for k, v in values.items()}
        missing = [
            name
            for o, name in sorted(self.required)
            if o == obj.name and (creating or name in named) and named.get(name) in (None, "")
        ]
        if missing:
            errors.append(
                error(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            )
        return errors

    def row_errors(
        self,
        obj: str,
        row: Mapping[str, Any],
        others: Callable[[], Iterable[Mapping[str, Any]]],
        *,
        allow_save: bool,
    ) -> list[dict[str, Any]]:
        """Validation and duplicate rules on a record as it would be saved; ``others``
        gives the object's live records (read only when a duplicate rule applies)."""
        errors = [
            error("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [rule.field])
            for rule in self.validation
            if rule.obj == obj and rule.refuses(row)
        ]
        rules = [
            r
            for r in self.duplicates
            if r.obj == obj and not (allow_save and r.action == "alert") and r.key(row)
        ]
        rows = [o for o in others() if o.get("Id") != row.get("Id")] if rules else []
        for rule in rules:
            matches = [o["Id"] for o in rows if rule.key(o) == rule.key(row)]
            if matches:
                errors.append(_duplicates(rule, matches))
                break
        return errors

    def describe(self, obj: str, answer: dict[str, Any]) -> dict[str, Any]:
        """A describe answer as the integration user sees it."""
        for described in answer.get("fields", []):
            name = described["name"]
            if (obj, name) in self.required:
                described["nillable"] = False
        return answer


def allow_save(headers: Mapping[str, str]) -> bool:
    """Whether a request's ``Sforce-Duplicate-Rule-Header`` says ``allowSave=true``."""
    value = next((v for k, v in headers.items() if k.lower() == HEADER.lower()), "")
    options = dict(part.strip().partition("=")[::2] for part in value.split(";") if "=" in part)
    return options.get("allowSave", "").strip().lower() == "true"


def _duplicates(rule: DuplicateRule, matches: list[str]) -> dict[str, Any]:
    found = error("DUPLICATES_DETECTED", "Use one of these records?")
    found["duplicateResult"] = {
        "allowSave": rule.action == "alert",
        "duplicateRule": rule.name,
        "duplicateRuleEntityType": rule.obj,
        "errorMessage": "You're creating a duplicate record. We recommend you use an existing"
        " record instead.",
        "matchResults": [
            {
                "entityType": rule.obj,
                "matchEngine": "ExactMatchEngine",
                "matchRecords": [
                    {"record": {"Id": i}, "matchConfidence": 100.0} for i in matches[:10]
                ],
                "rule": f"{rule.name}_Match",
                "size": len(matches),
                "success": True,
            }
        ],
    }
    return found
