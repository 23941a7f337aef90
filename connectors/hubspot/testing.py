"""Helpers for tests and scripts that need a HubSpot emulator (no pytest needed).

with running_emulator(rate_limit=(10, 1000)) as emulator:
    emulator.add_contact(sample_contact(1, lifecyclestage="customer"))
    connector = connector_for(emulator, page_size=50)
    deals = connector_for(emulator, kinds=ALL_KINDS)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator.server import HubSpotEmulator
from syncd.model import FieldType
from syncd.retry import RetryPolicy

FIELD_MAP: dict[str, dict[str, str]] = {
    "contacts": {
        "email": "email",
        "first_name": "firstname",
        "last_name": "lastname",
        "company": "company",
        "title": "jobtitle",
        "phone": "phone",
        "lead_source": "lead_source",
        "lead_score": "hubspotscore",
    },
    "companies": {"name": "name", "domain": "domain", "employees": "numberofemployees"},
    "deals": {
        "name": "dealname",
        "amount": "amount",
        "close_date": "closedate",
        "lost_reason": "closed_lost_reason",
        "company": "@companies",
        "contacts": "@contacts",
    },
}
"""Canonical -> HubSpot names per object type, as config/fields.yaml maps them."""
FIELD_TYPES: dict[str, dict[str, FieldType]] = {
    "contacts": {"email": "email", "lead_score": "number"},
    "companies": {"domain": "domain", "employees": "number"},
    "deals": {"amount": "number", "close_date": "date"},
}
ALL_KINDS = ("contacts", "companies", "deals")
FAST_RETRY = RetryPolicy(attempts=3, initial=0.01, maximum=0.05)
"""Retries that do not slow a test down."""


@contextmanager
def running_emulator(**knobs: Any) -> Iterator[HubSpotEmulator]:
    """A started emulator (``knobs`` as for ``HubSpotEmulator``), stopped afterwards."""
    emulator = HubSpotEmulator(**knobs).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def connector_for(
    emulator: HubSpotEmulator, *, kinds: Sequence[str] = ("contacts",), **options: Any
) -> HubSpotConnector:
    """A connector pointed at ``emulator`` syncing ``kinds`` (``ALL_KINDS``: every type)
    with the sample field map; ``options`` override."""
    settings: dict[str, Any] = {
        "host": emulator.url,
        "access_token": emulator.token,
        "field_map": {kind: FIELD_MAP[kind] for kind in kinds},
        "field_types": {kind: FIELD_TYPES[kind] for kind in kinds},
        "retry": FAST_RETRY,
        "settle": timedelta(0),  # the emulator's search sees every write at once
    }
    settings.update(options)
    return HubSpotConnector(**settings)


def sample_contact(n: int = 1, **properties: str) -> dict[str, str]:
    """Readable contact properties; ``n`` makes the email unique, ``properties`` override."""
    contact = {
        "email": f"person{n}@example.com",
        "firstname": f"Person{n}",
        "lastname": "Sample",
        "company": "Example Inc",
        "jobtitle": "Engineer",
        "lifecyclestage": "lead",
        "lead_source": "Web",
    }
    contact.update(properties)
    return contact


def sample_contacts(count: int, start: int = 1, **properties: str) -> list[dict[str, str]]:
    """``count`` sample contacts numbered from ``start``."""
    return [sample_contact(n, **properties) for n in range(start, start + count)]


def sample_company(n: int = 1, **properties: str) -> dict[str, str]:
    """Readable company properties; ``n`` makes the name and domain unique."""
    company = {"name": f"Company {n}", "domain": f"company{n}.example.com"}
    company.update(properties)
    return company


def sample_deal(n: int = 1, **properties: str) -> dict[str, str]:
    """Readable deal properties in the default pipeline; ``properties`` override."""
    deal = {
        "dealname": f"Deal {n}",
        "amount": str(1000 * n),
        "pipeline": "default",
        "dealstage": "qualifiedtobuy",
    }
    deal.update(properties)
    return deal
