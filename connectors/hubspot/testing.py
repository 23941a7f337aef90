"""Helpers for tests and scripts that need a HubSpot emulator (no pytest needed).

with running_emulator(rate_limit=(10, 1000)) as emulator:
    emulator.add_contact(sample_contact(1, lifecyclestage="customer"))
    connector = connector_for(emulator, page_size=50)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.emulator import HubSpotEmulator
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
    }
}
"""Canonical -> HubSpot names, as config/fields.yaml maps them."""
FIELD_TYPES: dict[str, FieldType] = {"email": "email", "lead_score": "number"}
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


def connector_for(emulator: HubSpotEmulator, **options: Any) -> HubSpotConnector:
    """A connector pointed at ``emulator`` with the sample field map; ``options`` override."""
    settings: dict[str, Any] = {
        "host": emulator.url,
        "access_token": emulator.token,
        "field_map": FIELD_MAP,
        "field_types": FIELD_TYPES,
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
