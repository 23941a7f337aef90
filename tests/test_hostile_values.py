"""Hostile values: whatever a user types into either system, one record costs only itself.

Each value arrives intact on the other side or is dead-lettered with a reason that names
the field; every other record of the cycle lands. Runs on both stores.
"""

from __future__ import annotations

from typing import Any

from tests.world import World

LONG_EMAIL = "a" * 309 + "@example.com"  # 321 characters
assert len(LONG_EMAIL) == 321


def _bystanders(world: World, n: int = 3) -> None:
    for i in range(n):
        world.hubspot.add_contact(
            {"email": f"calm{i}@example.com", "lastname": f"Calm {i}", "company": "Acme"}
        )


def _landed(world: World, n: int = 3) -> None:
    for i in range(n):
        assert world.person(f"calm{i}@example.com")["LastName"] == f"Calm {i}"


def _letter(world: World) -> dict[str, Any]:
    (letter,) = world.store.dead_letters()
    return letter


def test_a_321_character_email_stops_no_one(world: World) -> None:
    _bystanders(world)
    bad = world.hubspot.add_contact({"email": LONG_EMAIL, "lastname": "Long", "company": "X"})
    world.cycle()
    _landed(world)
    letter = _letter(world)
    assert letter["source"] == f"hubspot:contacts:{bad}"
    assert "email" in letter["message"] and "320" in letter["message"]
    world.cycle()  # and the next cycle runs too
    _landed(world)


def test_a_typed_partner_id_that_is_no_id_stops_no_one(world: World) -> None:
    _bystanders(world)
    typed = "x" * 70
    bad = world.hubspot.add_contact(
        {
            "email": "typed@example.com",
            "lastname": "Typed",
            "company": "X",
            "syncd_salesforce_id": typed,
        }
    )
    world.cycle()
    _landed(world)
    letter = _letter(world)
    assert letter["source"] == f"hubspot:contacts:{bad}"
    assert "partner id" in letter["message"] and "70 characters" in letter["message"]
