"""What the emulated integration user may see and edit: switches that break a setup.

Salesforce answers ``GET sobjects/{Object}/describe`` for the user who holds the token:
a field hidden by field-level security is absent from ``fields``, a read-only one has
``createable`` and ``updateable`` false, and each field says ``externalId`` and
``unique`` (Salesforce REST API Developer Guide, "sObject Describe",
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm;
the same per-user flags are what the Tooling API's ``UserFieldAccess`` reports as
``IsAccessible`` / ``IsCreatable`` / ``IsUpdatable``,
https://developer.salesforce.com/docs/atlas.en-us.api_tooling.meta/api_tooling/tooling_api_objects_userfieldaccess.htm).
A write naming a field the user cannot see is refused ``INVALID_FIELD`` ("No such
column"), one naming a field the user cannot edit ``INVALID_FIELD_FOR_INSERT_UPDATE``.

Not confirmed against a real org (the emulator's reading): the exact text of those
messages for a field hidden by field-level security, and whether an upsert keyed on an
External ID field that is not Unique refuses or updates the first match (the emulator
only reports ``unique: false`` in describe; syncd refuses that setup before writing).

    access.drop("Opportunity", "Syncd_HubSpot_Id__c")   # hidden / deleted
    access.read_only("Lead", "Lead_Score__c")           # field-level security: read only
    access.not_unique("Contact", "Syncd_HubSpot_Id__c") # External ID without Unique
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from connectors.salesforce.emulator.schema import SOQL_TYPES, SObject, error


class FieldAccess:
    """The integration user's view of the schema (thread-safe; empty: everything as built)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.hidden: set[tuple[str, str]] = set()
        self.locked: set[tuple[str, str]] = set()
        self.shared: set[tuple[str, str]] = set()

    def drop(self, obj: str, field: str) -> None:
        """The field disappears for the integration user (deleted, or no read access)."""
        with self._lock:
            self.hidden.add((obj, field.lower()))

    def read_only(self, obj: str, field: str) -> None:
        """Field-level security: the integration user may read the field, not edit it."""
        with self._lock:
            self.locked.add((obj, field.lower()))

    def not_unique(self, obj: str, field: str) -> None:
        """An External ID field without the Unique attribute."""
        with self._lock:
            self.shared.add((obj, field.lower()))

    def reset(self) -> None:
        with self._lock:
            self.hidden.clear()
            self.locked.clear()
            self.shared.clear()

    def visible(self, obj: str, field: str) -> bool:
        return (obj, field.lower()) not in self.hidden

    def describe(self, obj: SObject, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` (the object's full describe) as the integration user sees it."""
        fields = []
        for described in answer["fields"]:
            key = (obj.name, str(described["name"]).lower())
            if key in self.hidden:
                continue
            if key in self.locked:
                described = {**described, "createable": False, "updateable": False}
            if key in self.shared:
                described = {**described, "unique": False}
            fields.append(described)
        return {**answer, "fields": fields}

    def soql_types(self) -> Mapping[str, Mapping[str, str]]:
        """The SOQL parser's field types, without the hidden fields."""
        if not self.hidden:
            return SOQL_TYPES
        return {
            obj: {f: t for f, t in types.items() if (obj, f.lower()) not in self.hidden}
            for obj, types in SOQL_TYPES.items()
        }

    def refusals(self, obj: SObject, record: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Save-result errors for the fields of ``record`` the user may not write."""
        found = []
        for name in record:
            key = (obj.name, name.lower())
            if key in self.hidden:
                found.append(
                    error("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}")
                )
            elif key in self.locked:
                found.append(
                    error(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security"
                        " settings of this field and verify that it is read/write for your"
                        " profile or permission set.",
                        [name],
                    )
                )
        return found
