"""The state store's URL: which ones syncd supports, where a relative SQLite path points.

One source of truth: ``store:`` in syncd.yaml. ``SYNCD_STORE_URL`` may override it
explicitly (a test, a one-off migration), and then every command says so
(``syncd status`` and ``syncd validate`` print the store in effect and where it came from).
A relative SQLite path resolves against the folder of syncd.yaml, so a shell and the
service reading the same file open the same store.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV = "SYNCD_STORE_URL"
SUPPORTED = "sqlite:///PATH (a file; sqlite:////abs/path) or postgresql+psycopg://USER@HOST/DB"
_DRIVERS = {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}
_POSTGRES = {"postgres", "postgresql", "postgresql+psycopg2", "postgres+psycopg", "psycopg"}


def problem(url: str) -> str | None:
    """Why ``url`` is no store syncd can open, with the fix; None when it is one."""
    if "://" not in url:
        return f"{url!r} is not a database URL: use {SUPPORTED}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"{url!r} is not a database URL: use {SUPPORTED}"
    driver = parsed.drivername
    if driver in _DRIVERS:
        return None
    if driver in _POSTGRES:
        fixed = "postgresql+psycopg://" + url.partition("://")[2]
        shown = make_url(fixed).render_as_string(hide_password=True)
        return f"{driver}:// is not supported: write {shown} (syncd uses the psycopg 3 driver)"
    return f"unsupported database {driver!r}: use {SUPPORTED}"


def resolve(url: str, folder: Path) -> str:
    """``url`` with a relative SQLite path made absolute against ``folder``."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            return "sqlite:///" + str((folder / relative).resolve())
    return url


def shown(url: str) -> str:
    """``url`` for people and logs: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
