"""Logging: one line per event, JSON when stderr is not a terminal, secrets never shown.

A systemd journal or a log shipper gets one JSON object a line (``time``, ``level``,
``logger``, ``message`` and the event's fields such as ``cycle_id`` and ``record``); a
person at a terminal gets plain lines. ``message`` is always text: counts and other
structured values travel as fields of their own (``extra=``), and a mapping logged as the
message is spread into fields. The level is ``--log-level``, else ``log_level`` of
syncd.yaml, else the command's default (``LEVELS``). Every line first passes ``Redact``: the
configured credentials and anything that looks like a bearer token or an
authorization header are replaced by ``***``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter

TOKEN = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|basic)?\s*|bearer\s+|(?:access|refresh)_token[\"']?\s*[:=]\s*[\"']?|client_secret[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&]+)"
)


LEVELS = ("debug", "info", "warning", "error")
"""The levels ``--log-level`` and ``log_level`` accept (any case)."""


def level_of(name: str | None, default: str = "info") -> int:
    """The ``logging`` level named ``name`` (one of ``LEVELS``), else ``default``'s."""
    chosen = (name or default).lower()
    if chosen not in LEVELS:
        raise ValueError(f"{name!r} is not a log level: one of {', '.join(LEVELS)}")
    return int(getattr(logging, chosen.upper()))


class Redact(logging.Filter):
    """Replaces secrets in every record's message and arguments with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return TOKEN.sub(lambda m: m.group(1) + "***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, Mapping):  # fields, not a dict's repr as the message
            fields = dict(record.msg)
            record.msg = str(fields.pop("message", "") or "")
            for key, value in fields.items():
                if key not in _STANDARD:
                    setattr(record, key, value)
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.scrub(value))
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class _Stderr(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is at each line, so that a progress display that
    wraps stderr (``syncd once`` on a terminal) keeps the lines above itself."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always the current sys.stderr


def setup(
    *,
    json: bool | None = None,
    level: int = logging.INFO,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> Redact:
    """Send the root logger's records to ``stream`` (stderr) through ``Redact``."""
    if json is None:
        json = not (stream or sys.stderr).isatty()
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    redact = Redact(secrets)
    handler.addFilter(redact)
    if json:
        handler.setFormatter(
            JsonFormatter(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("apscheduler", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return redact
