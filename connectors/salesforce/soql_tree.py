"""The syntax tree of a parsed SOQL query and its evaluation against stored rows.

Values compare as Salesforce compares them: text ignoring case, ids by their first 15
characters when the literal has 15, datetimes as the emulator stores them (UTC text with
milliseconds, which sorts as time does), and null only equal to null.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

R = TypeVar("R", bound=Mapping[str, Any])


def format_datetime(at: datetime) -> str:
    """A datetime as Salesforce writes it: ``2026-11-23T12:00:00.123+0000``."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}+0000"


@dataclass(frozen=True, slots=True)
class Compare:
    field: str
    op: str
    value: Any
    type: str

    def matches(self, row: Mapping[str, Any]) -> bool:
        actual = row.get(self.field)
        if self.value is None or actual is None:
            if self.op == "=":
                return actual is None and self.value is None
            if self.op == "!=":
                return (actual is None) != (self.value is None)
            return False
        left, right = _comparable(actual, self.type), _comparable(self.value, self.type)
        if self.type == "id" and len(self.value) == 15:
            left = str(actual)[:15]
        return bool(_COMPARE[self.op](left, right))


@dataclass(frozen=True, slots=True)
class InList:
    field: str
    values: tuple[Any, ...]
    type: str
    negate: bool = False

    keys: frozenset[Any] = frozenset()

    def __post_init__(self) -> None:
        keys = frozenset(_comparable(v, self.type) for v in self.values if v is not None)
        object.__setattr__(self, "keys", keys)

    def matches(self, row: Mapping[str, Any]) -> bool:
        actual = row.get(self.field)
        if actual is None:
            found = None in self.values
        elif self.type == "id":
            found = actual in self.keys or actual[:15] in self.keys
        else:
            found = _comparable(actual, self.type) in self.keys
        return found != self.negate


@dataclass(frozen=True, slots=True)
class Like:
    field: str
    pattern: re.Pattern[str]

    def matches(self, row: Mapping[str, Any]) -> bool:
        actual = row.get(self.field)
        return actual is not None and self.pattern.fullmatch(str(actual)) is not None


@dataclass(frozen=True, slots=True)
class Junction:
    op: str  # "and" | "or"
    items: tuple[Condition, ...]

    def matches(self, row: Mapping[str, Any]) -> bool:
        test = all if self.op == "and" else any
        return test(item.matches(row) for item in self.items)


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition

    def matches(self, row: Mapping[str, Any]) -> bool:
        return not self.item.matches(row)


Condition = Compare | InList | Like | Junction | Not

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _comparable(value: Any, type_: str) -> Any:
    if type_ == "string":
        return str(value).lower()
    if type_ == "double":
        return float(value)
    return value


@dataclass(frozen=True, slots=True)
class Order:
    field: str
    descending: bool = False
    nulls_last: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query, names in their canonical spelling."""

    object: str
    fields: tuple[str, ...]
    where: Condition | None
    order: tuple[Order, ...]
    limit: int | None
    offset: int = 0

    def matches(self, row: Mapping[str, Any]) -> bool:
        return self.where is None or self.where.matches(row)

    def conjuncts(self) -> Sequence[Condition]:
        """The top-level AND terms of the WHERE clause (for index use)."""
        if self.where is None:
            return ()
        if isinstance(self.where, Junction) and self.where.op == "and":
            return self.where.items
        return (self.where,)


def sort_rows(rows: list[R], query: Query, types: Mapping[str, str]) -> None:
    """Sort in place by the ORDER BY clause (nulls first ascending, last descending)."""
    for order in reversed(query.order):
        type_ = types[order.field]
        nulls_high = order.nulls_last != order.descending

        def key(
            row: Mapping[str, Any],
            field: str = order.field,
            t: str = type_,
            high: bool = nulls_high,
        ) -> tuple[int, Any]:
            value = row.get(field)
            if value is None:
                return (1 if high else -1, "")
            return (0, _comparable(value, t))

        rows.sort(key=key, reverse=order.descending)
