"""``syncd init``: a commented configuration for a real portal and org, to start from.

The templates are package data (``syncd/config/templates``): syncd.yaml, stages.yaml and
fields.yaml (the shipped example, pointed at real systems, each naming its JSON Schema
for editors) and secrets.env, the credentials' variable names without values.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from syncd.config import schema as config_schema

TEMPLATES = ("syncd.yaml", "stages.yaml", "fields.yaml", "secrets.env")
SECRETS = "secrets.env"
SCHEMA_DIR = "schema"
"""Where the JSON Schemas go, beside the files whose first line names them."""


def template(name: str) -> str:
    """The text of one template."""
    return (resources.files("syncd.config") / "templates" / name).read_text(encoding="utf-8")


def targets(directory: Path) -> list[Path]:
    """Every file ``write`` writes into ``directory``."""
    schemas = [directory / SCHEMA_DIR / config_schema.schema_name(f) for f in config_schema.MODELS]
    return [directory / name for name in TEMPLATES] + schemas


def existing(directory: Path) -> list[Path]:
    """The files ``write`` would overwrite."""
    return [path for path in targets(directory) if path.exists()]


def write(directory: Path) -> list[Path]:
    """Write the templates and the schemas into ``directory``; the secrets file mode 0600."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in TEMPLATES:
        path = directory / name
        if name == SECRETS:
            # created 0600, never readable by others even for an instant; an existing
            # file (--force) is narrowed too
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as secrets:
                secrets.write(template(name))
        else:
            path.write_text(template(name), encoding="utf-8")
        written.append(path)
    return written + config_schema.write(directory / SCHEMA_DIR)


def next_steps(directory: Path) -> list[str]:
    """What to do after ``syncd init``, in order."""
    config = directory / "syncd.yaml"
    return [
        f"Fill in the credentials in {directory / SECRETS} (or set them in the environment),"
        f" and login_url (your My Domain) in {config}.",
        "Create the partner-id fields: HubSpot property syncd_salesforce_id (unique) on"
        " contacts, companies and deals; Salesforce field Syncd_HubSpot_Id__c (External ID,"
        f" Unique) on Lead, Contact, Account and Opportunity. `syncd validate --config {config}`"
        " lists everything still missing, each with what to create.",
        "See what the first cycle would do, writing nothing:"
        f" syncd once --dry-run --config {config}",
        "Install the service: config/systemd/syncd.service (its install steps are at its top;"
        " README, Running it as a service). It runs as the user syncd, which cannot write"
        f" {directory}: point store: in {config} at sqlite:////var/lib/syncd/syncd.db (or"
        f" PostgreSQL), and let the group syncd read {directory / SECRETS}"
        " (chgrp syncd, chmod 0640).",
    ]
