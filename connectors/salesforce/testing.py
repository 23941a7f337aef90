"""Helpers for tests and demos, free of pytest: a running emulator, sample people, and a
connector pointed at an emulator.

    with running_emulator(batch_min=1) as emulator:
        lead_id = emulator.add("Lead", sample_lead(1, Title="CTO"))
        connector = connector_for(emulator, page_size=5)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce import Salesforce

from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.session import session
from syncd.model import FieldMap, FieldType

PERSON_FIELDS: FieldMap = {
    "Lead": {
        "email": "Email",
        "first_name": "FirstName",
        "last_name": "LastName",
        "company": "Company",
        "title": "Title",
        "phone": "Phone",
        "lead_source": "LeadSource",
        "lead_score": "Lead_Score__c",
    },
    "Contact": {
        "email": "Email",
        "first_name": "FirstName",
        "last_name": "LastName",
        "title": "Title",
        "phone": "Phone",
        "lead_source": "LeadSource",
    },
}
"""The person mapping of the shipped ``config/fields.yaml``, for Salesforce."""

PERSON_TYPES: dict[str, FieldType] = {
    "email": "email",
    "first_name": "string",
    "last_name": "string",
    "company": "string",
    "title": "string",
    "phone": "string",
    "lead_source": "string",
    "lead_score": "number",
}


@contextmanager
def running_emulator(**knobs: Any) -> Iterator[SalesforceEmulator]:
    """A started emulator (``knobs`` as for SalesforceEmulator), stopped on exit."""
    emulator = SalesforceEmulator(**knobs).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def sample_lead(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid lead's fields, numbered ``n``; ``fields`` override or add (None clears)."""
    return {
        "FirstName": f"Lead{n}",
        "LastName": f"Sample {n}",
        "Email": f"lead{n}@example.com",
        "Company": f"Company {n}",
        "Title": "Analyst",
        "Status": "Open - Not Contacted",
        "LeadSource": "Web",
        **fields,
    }


def sample_contact(n: int = 1, **fields: Any) -> dict[str, Any]:
    """A valid contact's fields, numbered ``n``; ``fields`` override or add."""
    return {
        "FirstName": f"Contact{n}",
        "LastName": f"Sample {n}",
        "Email": f"contact{n}@example.com",
        "Title": "Buyer",
        **fields,
    }


def connector_for(emulator: SalesforceEmulator, **options: Any) -> SalesforceConnector:
    """A SalesforceConnector logged in to ``emulator`` with the shipped person mapping."""
    settings: dict[str, Any] = {
        "login_url": emulator.my_domain_url,
        "connect_to": connect_to(emulator),
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
        "field_map": PERSON_FIELDS,
        "field_types": {"Lead": PERSON_TYPES, "Contact": PERSON_TYPES},
        "ca_bundle": emulator.ca_pem_path,
    }
    settings.update(options)
    return SalesforceConnector(**settings)


def connect_to(emulator: SalesforceEmulator) -> dict[str, str]:
    """The emulator's My Domain ``host:port`` -> its loopback ``host:port``."""
    return {urlsplit(emulator.my_domain_url).netloc: urlsplit(emulator.url).netloc}


def session_for(emulator: SalesforceEmulator) -> requests.Session:
    """A requests session that trusts the emulator's test CA, and nothing else, and reaches
    its My Domain host name on loopback."""
    return session(emulator.ca_pem_path, (5.0, 30.0), connect_to=connect_to(emulator))


def client_for(emulator: SalesforceEmulator) -> Salesforce:
    """A plain simple-salesforce client, logged in to ``emulator`` by client credentials."""
    http = session_for(emulator)
    form = {
        "grant_type": "client_credentials",
        "client_id": emulator.client_id,
        "client_secret": emulator.client_secret,
    }
    token = http.post(f"{emulator.my_domain_url}/services/oauth2/token", data=form).json()
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=http,
        version="60.0",
    )
