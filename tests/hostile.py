"""The hostile-values matrix: each value typed into one system, one cycle, and what the
other system holds afterwards ("intact") or why syncd keeps it apart ("dead-lettered").

``run(world)`` returns one ``Row`` per value and direction; ``python -m tests.hostile``
prints the table for SQLite and (with SYNCD_TEST_DATABASE_URL) PostgreSQL.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from connectors.salesforce.emulator.store import WriteError
from syncd.sync.intake import printable
from tests.world import World, make_world

LONG_EMAIL = "a" * 309 + "@example.com"
"""321 characters: one more than any email the store can match on."""
VALUES: dict[str, str] = {
    "quotes": 'O\'Brien "Bob" `tick`',
    "backslashes": "back\\slash \\n \\\\ end\\",
    "percent and underscore": "100%_done %% __",
    "SOQL injection": "' OR Name != '",
    "accents": "Zoë Ångström-Øster, Ça va? Ñandú",
    "CJK": "山田太郎 株式会社テスト 홍길동",
    "right-to-left": "محمد بن سلمان עברית",
    "emoji": "👩‍💻🚀🇫🇷 ok",
    "NUL": "before\x00after",
    "newlines": "line one\nline two\r\nline three",
    "100,000 characters": "x" * 100_000,
    "NUL in a value too long": "\x00" + "y" * 200,
}
"""Values typed into a text field (HubSpot ``jobtitle``, Salesforce ``Title``)."""
EMAILS = {
    "email of 321 characters": LONG_EMAIL,
    "email with quote, % and _": "o'brien+100%_off@example.com",
    "email with NUL": "nul\x00byte@example.com",
}
"""Hostile values of the matching field (email)."""
PARTNER = "partner id that is no id"
DIRECTIONS = ("HubSpot -> Salesforce", "Salesforce -> HubSpot")


@dataclass(frozen=True, slots=True)
class Row:
    """What became of one hostile value going one way."""

    value: str
    direction: str
    outcome: str


def _letter(world: World, source: str) -> dict[str, Any] | None:
    found = [x for x in world.store.dead_letters() if x["source"] == source]
    return found[0] if found else None


def _said(letter: dict[str, Any]) -> str:
    message = printable(" ".join(str(letter["message"]).split()))
    if len(message) > 140:
        message = message[:140] + "…"
    return f"dead-lettered by {letter['system'] if not _ours(letter) else 'syncd'}: " + (
        f"{letter['code']}: {message}"
    )


def _ours(letter: dict[str, Any]) -> bool:
    return str(letter.get("code") or "").startswith("SYNCD_")


def run(world: World) -> list[Row]:
    """Every hostile value both ways, in two cycles with bystanders; one row each."""
    hubspot_ids: dict[str, str] = {}
    for i, (name, value) in enumerate(VALUES.items()):
        hubspot_ids[name] = world.hubspot.add_contact(
            {"email": f"h{i}@example.com", "lastname": f"H {i}", "company": "Acme"}
            | {"jobtitle": value}
        )
    for name, email in EMAILS.items():
        hubspot_ids[name] = world.hubspot.add_contact(
            {"email": email, "lastname": name, "company": "Acme"}
        )
    hubspot_ids[PARTNER] = world.hubspot.add_contact(
        {"email": "typed@example.com", "lastname": "Typed", "company": "Acme"}
        | {"syncd_salesforce_id": "x" * 70}
    )
    salesforce_ids: dict[str, str | None] = {}
    refused_at_entry: dict[str, str] = {}
    for i, (name, value) in enumerate(VALUES.items()):
        fields = {"Email": f"s{i}@example.com", "LastName": f"S {i}", "Company": "Acme"}
        try:
            salesforce_ids[name] = world.salesforce.add("Lead", {**fields, "Title": value})
        except WriteError as error:
            salesforce_ids[name] = None
            refused_at_entry[name] = str(error)
    special: list[tuple[str, dict[str, Any]]] = [
        (name, {"Email": email, "LastName": name, "Company": "Acme"})
        for name, email in EMAILS.items()
    ]
    typed = {"Email": "typed-sf@example.com", "LastName": "Typed", "Company": "Acme"}
    special.append((PARTNER, typed | {"Syncd_HubSpot_Id__c": "' OR Name != '"}))
    for name, fields in special:
        try:
            salesforce_ids[name] = world.salesforce.add("Lead", fields)
        except WriteError as error:
            salesforce_ids[name] = None
            refused_at_entry[name] = str(error)
    world.hubspot.add_contact(
        {"email": "bystander@example.com", "lastname": "Calm", "company": "Acme"}
    )
    world.salesforce.add(
        "Lead", {"Email": "bystander-sf@example.com", "LastName": "Calm", "Company": "Acme"}
    )
    world.cycle()
    world.cycle()
    assert world.person("bystander@example.com")["LastName"] == "Calm"
    assert world.contact("bystander-sf@example.com")["lastname"] == "Calm"
    rows = []
    for name in [*VALUES, *EMAILS, PARTNER]:
        rows.append(Row(name, DIRECTIONS[0], _to_salesforce(world, name, hubspot_ids)))
        rows.append(
            Row(
                name,
                DIRECTIONS[1],
                _to_hubspot(world, name, salesforce_ids, refused_at_entry),
            )
        )
    return rows


def _to_salesforce(world: World, name: str, ids: dict[str, str]) -> str:
    letter = _letter(world, f"hubspot:contacts:{ids[name]}")
    if letter is not None:
        return _said(letter)
    if name in VALUES:
        i = list(VALUES).index(name)
        title = world.person(f"h{i}@example.com").get("Title")
        return "intact" if title == VALUES[name] else f"CHANGED: {title!r:.60}"
    if name in EMAILS:
        email = world.person(EMAILS[name].lower()).get("Email")
        return "intact" if email == EMAILS[name] else f"CHANGED: {email!r:.60}"
    return "NOT SYNCED, NO LETTER"


def _to_hubspot(
    world: World, name: str, ids: dict[str, str | None], refused_at_entry: dict[str, str]
) -> str:
    if ids[name] is None:
        said = printable(" ".join(refused_at_entry[name].split()))[:70]
        return f"cannot be entered in Salesforce: {said}…"
    letter = _letter(world, f"salesforce:Lead:{ids[name]}")
    if letter is not None:
        return _said(letter)
    if name in VALUES:
        i = list(VALUES).index(name)
        title = world.contact(f"s{i}@example.com").get("jobtitle")
        return "intact" if title == VALUES[name] else f"CHANGED: {title!r:.60}"
    if name in EMAILS:
        email = world.contact(EMAILS[name].lower()).get("email")
        return "intact" if email == EMAILS[name] else f"CHANGED: {email!r:.60}"
    return "NOT SYNCED, NO LETTER"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| value | direction | outcome |", "|---|---|---|"]
    lines += [f"| {r.value} | {r.direction} | {r.outcome.replace('|', '/')} |" for r in rows]
    return "\n".join(lines)


def _pg_url(base: str) -> tuple[str, Any]:
    schema = "h_" + uuid.uuid4().hex[:10]
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}", drop


def main() -> None:
    """Print the table per store."""
    stores = ["sqlite"] + (["postgresql"] if os.environ.get("SYNCD_TEST_DATABASE_URL") else [])
    for store in stores:
        with tempfile.TemporaryDirectory() as tmp:
            drop = None
            if store == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'syncd.db'}"
            else:
                url, drop = _pg_url(os.environ["SYNCD_TEST_DATABASE_URL"])
            try:
                for world in make_world(Path(tmp), url):
                    sys.stdout.write(f"\n{store}\n\n{table(run(world))}\n")
            finally:
                if drop is not None:
                    drop()


if __name__ == "__main__":
    main()
