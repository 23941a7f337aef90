"""The emulator's SOQL parser and evaluator, on plain rows (no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from simple_salesforce import format_soql

from connectors.salesforce.emulator.schema import SOQL_TYPES
from connectors.salesforce.soql import Query, SoqlError, parse
from connectors.salesforce.soql_tree import Compare, sort_rows

ROWS: list[dict[str, Any]] = [
    {
        "Id": "00Q5g0000000001AAA",
        "LastName": "O'Brien",
        "Email": "ob@example.com",
        "Company": "Acme",
        "Lead_Score__c": 10.0,
        "IsDeleted": False,
        "SystemModstamp": "2026-11-23T12:00:00.000+0000",
    },
    {
        "Id": "00Q5g0000000002AAA",
        "LastName": "Back\\slash",
        "Email": None,
        "Company": "Globex",
        "Lead_Score__c": 55.5,
        "IsDeleted": False,
        "SystemModstamp": "2026-11-23T12:00:00.123+0000",
    },
    {
        "Id": "00Q5g0000000003AAA",
        "LastName": "Turing",
        "Email": "at@example.com",
        "Company": "acme",
        "Lead_Score__c": None,
        "IsDeleted": True,
        "SystemModstamp": "2026-11-23T13:30:00.000+0000",
    },
]


def q(text: str) -> Query:
    return parse(text, SOQL_TYPES)


def ids(text: str) -> list[str]:
    query = q(text)
    return [row["Id"][-4:-3] for row in ROWS if query.matches(row)]


def refused(text: str) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        q(text)
    return caught.value


@given(st.text())
def test_any_text_round_trips_through_format_soql(text: str) -> None:
    query = q(format_soql("SELECT Id FROM Lead WHERE LastName = {}", text))
    assert isinstance(query.where, Compare)
    assert query.where.value == (text or None)  # '' is null in SOQL, as in the records


def test_quotes_and_backslashes_match_verbatim_and_an_injection_matches_nothing() -> None:
    assert ids(format_soql("SELECT Id FROM Lead WHERE LastName = {}", "O'Brien")) == ["1"]
    assert ids(format_soql("SELECT Id FROM Lead WHERE LastName = {}", "Back\\slash")) == ["2"]
    injection = format_soql("SELECT Id FROM Lead WHERE Email = {}", "x' OR Email != '")
    assert ids(injection) == []
    assert ids("SELECT Id FROM Lead WHERE Email = 'x' OR Email != ''") == ["1", "3"]


def test_escapes_decode_as_soql_defines_them() -> None:
    query = q(r"SELECT Id FROM Lead WHERE LastName = 'a\'b\"c\\d\ne\tf\u00e9\N'")
    assert isinstance(query.where, Compare)
    assert query.where.value == "a'b\"c\\d\ne\tfé\n"
    assert refused(r"SELECT Id FROM Lead WHERE LastName = 'bad \q escape'").code == (
        "MALFORMED_QUERY"
    )
    assert refused("SELECT Id FROM Lead WHERE LastName = 'open").code == "MALFORMED_QUERY"


def test_and_or_mixed_without_parentheses_is_refused() -> None:
    error = refused(
        "SELECT Id FROM Lead WHERE Company = 'Acme' AND IsDeleted = false OR Email = null"
    )
    assert error.code == "MALFORMED_QUERY" and "unexpected token: 'OR'" in error.message
    assert ids(
        "SELECT Id FROM Lead WHERE Company = 'Acme' AND (IsDeleted = true OR Email = null)"
    ) == ["3"]
    assert ids(
        "SELECT Id FROM Lead WHERE (Company = 'Globex' AND Email = null) OR LastName = 'turing'"
    ) == ["2", "3"]
    assert ids("SELECT Id FROM Lead WHERE NOT Company = 'acme'") == ["2"]


def test_in_not_in_and_like() -> None:
    assert ids("SELECT Id FROM Lead WHERE Company IN ('ACME', 'Initech')") == ["1", "3"]
    assert ids("SELECT Id FROM Lead WHERE Company NOT IN ('Acme')") == ["2"]
    assert ids(format_soql("SELECT Id FROM Lead WHERE Id IN {}", [ROWS[1]["Id"]])) == ["2"]
    assert ids("SELECT Id FROM Lead WHERE Id = '00Q5g0000000003'") == ["3"]  # 15-char id
    assert ids("SELECT Id FROM Lead WHERE Email LIKE '%@example.com'") == ["1", "3"]
    assert ids("SELECT Id FROM Lead WHERE LastName LIKE 'o_brien'") == ["1"]
    assert ids(r"SELECT Id FROM Lead WHERE LastName LIKE 'o\_brien'") == []


def test_datetime_literals_in_every_form_compare_as_instants() -> None:
    assert ids("SELECT Id FROM Lead WHERE SystemModstamp > 2026-11-23T12:00:00Z") == ["2", "3"]
    assert ids("SELECT Id FROM Lead WHERE SystemModstamp >= 2026-11-23T12:00:00.123+00:00") == [
        "2",
        "3",
    ]
    assert ids("SELECT Id FROM Lead WHERE SystemModstamp < 2026-11-23T08:30:00-05:00") == ["1", "2"]
    since = datetime(2026, 11, 23, 14, 0, tzinfo=timezone(timedelta(hours=1)))
    text = format_soql("SELECT Id FROM Lead WHERE SystemModstamp >= {}", since)
    assert text.endswith("2026-11-23T13:00:00+00:00") and ids(text) == ["3"]
    assert ids(
        format_soql(
            "SELECT Id FROM Lead WHERE SystemModstamp = {}", datetime(2026, 11, 23, 12, tzinfo=UTC)
        )
    ) == ["1"]


def test_literals_must_fit_the_field_type() -> None:
    quoted = refused("SELECT Id FROM Lead WHERE SystemModstamp > '2026-11-23T12:00:00Z'")
    assert quoted.code == "INVALID_FIELD" and "must be of type dateTime" in quoted.message
    assert refused("SELECT Id FROM Lead WHERE IsDeleted = 'true'").code == "INVALID_FIELD"
    assert ids("SELECT Id FROM Lead WHERE Lead_Score__c >= 10") == ["1", "2"]
    assert refused("SELECT Id FROM Lead WHERE Lead_Score__c > null").code == "MALFORMED_QUERY"


def test_unknown_fields_objects_and_bad_syntax_use_salesforce_codes() -> None:
    field = refused("SELECT Id, Nope__c FROM Lead")
    assert field.code == "INVALID_FIELD" and "No such column 'Nope__c' on entity 'Lead'" in (
        field.message
    )
    assert refused("SELECT Id FROM Widget__c").code == "INVALID_TYPE"
    assert refused("SELECT Id FROM Lead WHERE Nope = 1").code == "INVALID_FIELD"
    for text in (
        "SELECT FROM Lead",
        "SELECT Id Lead",
        "SELECT Id FROM Lead LIMIT x",
        "SELECT Id FROM Lead WHERE",
        "SELECT COUNT() FROM Lead",
        "SELECT Id FROM Lead ORDER BY",
        "SELECT Id FROM Lead garbage",
    ):
        assert refused(text).code == "MALFORMED_QUERY", text


def test_names_ignore_case_and_come_back_canonical() -> None:
    query = q("select id, lastname from LEAD where company = 'ACME' order by lastname desc limit 5")
    assert (query.object, query.fields, query.limit) == ("Lead", ("Id", "LastName"), 5)


def test_order_by_puts_nulls_first_ascending_and_last_descending() -> None:
    rows = list(ROWS)
    sort_rows(rows, q("SELECT Id FROM Lead ORDER BY Lead_Score__c"), SOQL_TYPES["Lead"])
    assert [r["Lead_Score__c"] for r in rows] == [None, 10.0, 55.5]
    sort_rows(rows, q("SELECT Id FROM Lead ORDER BY Lead_Score__c DESC"), SOQL_TYPES["Lead"])
    assert [r["Lead_Score__c"] for r in rows] == [55.5, 10.0, None]
    sort_rows(rows, q("SELECT Id FROM Lead ORDER BY Company, Id DESC"), SOQL_TYPES["Lead"])
    assert [r["Id"][-4] for r in rows] == ["3", "1", "2"]
