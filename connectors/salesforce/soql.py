"""A SOQL subset for the emulator: a tokenizer and a recursive-descent parser.

    SELECT f1, f2 FROM Object [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], ...]
    [LIMIT n] [OFFSET n]

Conditions compare a field with a literal (``=  !=  <>  <  <=  >  >=``), ``[NOT] IN (...)``,
``LIKE``, joined by AND or OR with parentheses and NOT. As in Salesforce, AND and OR mixed
without parentheses are refused, string comparisons ignore case, and string literals take
SOQL's backslash escapes. Errors carry Salesforce's error codes (``MALFORMED_QUERY``,
``INVALID_FIELD``, ``INVALID_TYPE``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.salesforce.soql_tree import (
    Compare,
    Condition,
    InList,
    Junction,
    Like,
    Not,
    Order,
    Query,
    format_datetime,
)

__all__ = ["Query", "SoqlError", "format_datetime", "parse", "tokenize"]

FieldTypes = Mapping[str, Mapping[str, str]]
"""Per object, field name -> SOQL type (``id``, ``string``, ``double``, ``boolean``,
``datetime``, ``date``); names in their canonical spelling."""

KEYWORDS = frozenset(
    re.split(
        r"\s+",
        "select from where and or not in like order by asc desc nulls first last limit offset"
        " true false null includes excludes group having",
    )
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?![\dT])")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?![\w.])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">", "(", ")", ",")


class SoqlError(ValueError):
    """A query Salesforce would refuse; ``code`` is its errorCode."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # name, keyword, string, number, datetime, date, op, end
    text: str
    value: Any
    column: int
    like: str | None = None  # for strings: the LIKE pattern as a regular expression


def _fail(query: str, column: int, problem: str, code: str = "MALFORMED_QUERY") -> SoqlError:
    """An error located the way Salesforce locates it: the query, a caret, row and column."""
    excerpt = query.replace("\n", " ")
    return SoqlError(
        code, f"\n{excerpt}\n{' ' * column}^\nERROR at Row:1:Column:{column + 1}\n{problem}"
    )


def _string(query: str, start: int) -> tuple[Token, int]:
    """Read the quoted literal at ``start``: its value and its LIKE pattern."""
    value: list[str] = []
    pattern: list[str] = []
    i = start + 1
    while i < len(query):
        char = query[i]
        if char == "'":
            text = query[start : i + 1]
            return Token("string", text, "".join(value), start, "".join(pattern)), i + 1
        if char != "\\":
            value.append(char)
            pattern.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
            i += 1
            continue
        escape = query[i + 1 : i + 2]
        if escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", query[i + 2 : i + 6]):
            char, i = chr(int(query[i + 2 : i + 6], 16)), i + 6
        elif escape.lower() in _ESCAPES or escape in ("%", "_"):
            char, i = _ESCAPES.get(escape.lower(), escape), i + 2
        else:
            raise _fail(query, i, "Invalid string literal: illegal escape sequence")
        value.append(char)
        pattern.append(re.escape(char))
    raise _fail(query, start, "Unterminated string literal")


def _datetime(match: re.Match[str]) -> str:
    """A datetime literal in the emulator's stored form (UTC, milliseconds, ``+0000``)."""
    year, month, day, hour, minute, second, millis, zone = match.groups()
    offset = "+00:00" if zone == "Z" else zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
    at = datetime.fromisoformat(
        f"{year}-{month}-{day}T{hour}:{minute}:{second}.{(millis or '0').ljust(3, '0')}{offset}"
    )
    return format_datetime(at)


def tokenize(query: str) -> list[Token]:
    """Split a SOQL query into tokens; raise SoqlError on a character SOQL has no use for."""
    tokens: list[Token] = []
    i = 0
    while i < len(query):
        char = query[i]
        if char.isspace():
            i += 1
            continue
        if char == "'":
            token, i = _string(query, i)
            tokens.append(token)
            continue
        if match := _DATETIME.match(query, i):
            tokens.append(Token("datetime", match.group(), _datetime(match), i))
        elif match := _DATE.match(query, i):
            tokens.append(Token("date", match.group(), match.group(), i))
        elif match := _NUMBER.match(query, i):
            text = match.group()
            number = float(text) if any(c in text for c in ".eE") else int(text)
            tokens.append(Token("number", text, number, i))
        elif match := _NAME.match(query, i):
            text = match.group()
            kind = "keyword" if text.lower() in KEYWORDS else "name"
            tokens.append(Token(kind, text, text.lower() if kind == "keyword" else text, i))
        else:
            op = next((op for op in _OPERATORS if query.startswith(op, i)), None)
            if op is None:
                raise _fail(query, i, f"unexpected token: '{char}'")
            tokens.append(Token("op", op, op, i))
            i += len(op)
            continue
        i = match.end()
    tokens.append(Token("end", "", None, len(query)))
    return tokens


# --- the parser ------------------------------------------------------------------------


class _Parser:
    def __init__(self, query: str, objects: FieldTypes) -> None:
        self.query = query
        self.objects = objects
        self.tokens = tokenize(query)
        self.at = 0
        self.types: Mapping[str, str] = {}
        self.names: dict[str, str] = {}

    @property
    def token(self) -> Token:
        return self.tokens[self.at]

    def unexpected(self, token: Token | None = None) -> SoqlError:
        token = token or self.token
        if token.kind == "end":
            return _fail(self.query, token.column, "unexpected token: <EOF>")
        return _fail(self.query, token.column, f"unexpected token: '{token.text}'")

    def keyword(self, *words: str) -> str | None:
        if self.token.kind == "keyword" and self.token.value in words:
            self.at += 1
            return str(self.tokens[self.at - 1].value)
        return None

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise self.unexpected()

    def op(self, *ops: str) -> str | None:
        if self.token.kind == "op" and self.token.value in ops:
            self.at += 1
            return str(self.tokens[self.at - 1].value)
        return None

    def name(self) -> Token:
        token = self.token
        if token.kind != "name":
            raise self.unexpected()
        self.at += 1
        return token

    def parse(self) -> Query:
        self.expect_keyword("select")
        raw_fields = [self.name()]
        if self.op("("):
            raise _fail(self.query, raw_fields[0].column, "aggregate functions are not supported")
        while self.op(","):
            raw_fields.append(self.name())
        self.expect_keyword("from")
        obj_token = self.name()
        obj = next((o for o in self.objects if o.lower() == obj_token.text.lower()), None)
        if obj is None:
            raise _fail(
                self.query,
                obj_token.column,
                f"sObject type '{obj_token.text}' is not supported. If you are attempting to use"
                " a custom object, be sure to append the '__c' after the entity name. Please"
                " reference your WSDL or the describe call for the appropriate names.",
                "INVALID_TYPE",
            )
        self.types = self.objects[obj]
        self.names = {n.lower(): n for n in self.types}
        self.obj = obj
        fields = tuple(dict.fromkeys(self.field(t) for t in raw_fields))
        where = self.condition() if self.keyword("where") else None
        order: list[Order] = []
        if self.keyword("order"):
            self.expect_keyword("by")
            order.append(self.order())
            while self.op(","):
                order.append(self.order())
        limit = self.integer() if self.keyword("limit") else None
        offset = self.integer() if self.keyword("offset") else 0
        if self.token.kind != "end":
            raise self.unexpected()
        return Query(obj, fields, where, tuple(order), limit, offset)

    def field(self, token: Token) -> str:
        name = self.names.get(token.text.lower())
        if name is None:
            raise _fail(
                self.query,
                token.column,
                f"No such column '{token.text}' on entity '{self.obj}'. If you are attempting to"
                " use a custom field, be sure to append the '__c' after the custom field name."
                " Please reference your WSDL or the describe call for the appropriate names.",
                "INVALID_FIELD",
            )
        return name

    def integer(self) -> int:
        token = self.token
        if token.kind != "number" or not isinstance(token.value, int) or token.value < 0:
            raise self.unexpected()
        self.at += 1
        return int(token.value)

    def order(self) -> Order:
        field = self.field(self.name())
        descending = self.keyword("asc", "desc") == "desc"
        nulls_last = descending
        if self.keyword("nulls"):
            nulls_last = self.keyword("first", "last") == "last"
        return Order(field, descending, nulls_last)

    def condition(self) -> Condition:
        items = [self.term()]
        joiner: str | None = None
        while (token := self.token).kind == "keyword" and token.value in ("and", "or"):
            if joiner is not None and token.value != joiner:
                raise self.unexpected(token)
            joiner = str(token.value)
            self.at += 1
            items.append(self.term())
        return items[0] if joiner is None else Junction(joiner, tuple(items))

    def term(self) -> Condition:
        if self.keyword("not"):
            return Not(self.term())
        if self.op("("):
            inner = self.condition()
            if not self.op(")"):
                raise self.unexpected()
            return inner
        field_token = self.name()
        field = self.field(field_token)
        type_ = self.types[field]
        negate = bool(self.keyword("not"))
        if self.keyword("in"):
            if not self.op("("):
                raise self.unexpected()
            values = [self.literal(field, type_)]
            while self.op(","):
                values.append(self.literal(field, type_))
            if not self.op(")"):
                raise self.unexpected()
            return InList(field, tuple(values), type_, negate)
        if negate:
            raise self.unexpected(self.tokens[self.at - 1])
        if self.keyword("like"):
            token = self.token
            if token.kind != "string" or token.like is None:
                raise self.unexpected()
            self.at += 1
            return Like(field, re.compile(token.like, re.IGNORECASE | re.DOTALL))
        op = self.op("=", "!=", "<>", "<", "<=", ">", ">=")
        if op is None:
            raise self.unexpected()
        value = self.literal(field, type_)
        if value == "" and op in ("=", "!=", "<>"):
            value = None  # Salesforce stores no empty text: '' means null
        if value is None and op not in ("=", "!=", "<>"):
            raise self.unexpected(self.tokens[self.at - 1])
        return Compare(field, "!=" if op == "<>" else op, value, type_)

    def literal(self, field: str, type_: str) -> Any:
        token = self.token
        self.at += 1
        kind, label = _LITERALS.get(type_, ("string", "string"))
        if token.kind == "keyword" and token.value in ("null", "true", "false"):
            if token.value == "null":
                return None
            if kind == "boolean":
                return token.value == "true"
        elif token.kind == kind:
            return token.value
        if token.kind not in ("string", "number", "datetime", "date", "keyword"):
            raise self.unexpected(token)
        quoted = " and should not be enclosed in quotes" if token.kind == "string" else ""
        raise _fail(
            self.query,
            token.column,
            f"value of filter criterion for field '{field}' must be of type {label}{quoted}",
            "INVALID_FIELD",
        )


_LITERALS = {
    "datetime": ("datetime", "dateTime"),
    "date": ("date", "date"),
    "double": ("number", "double"),
    "boolean": ("boolean", "boolean"),
}
"""SOQL type -> (token kind of its literals, type name in Salesforce's messages)."""


def parse(query: str, objects: FieldTypes) -> Query:
    """Parse ``query`` against the objects' fields; raise SoqlError as Salesforce would."""
    return _Parser(query, objects).parse()
