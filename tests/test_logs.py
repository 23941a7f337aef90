"""Logs: one JSON object a line off a terminal, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from syncd import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield io.StringIO()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_lines_are_json_with_the_event_fields(stream: io.StringIO) -> None:
    logs.setup(json=True, stream=stream)
    logging.getLogger("syncd.test").info("cycle of %s done", "person", extra={"cycle_id": "c1"})
    (line,) = stream.getvalue().splitlines()
    event = json.loads(line)
    assert (event["level"], event["logger"], event["message"]) == (
        "INFO",
        "syncd.test",
        "cycle of person done",
    )
    assert event["cycle_id"] == "c1" and "time" in event


def test_secrets_and_tokens_never_reach_the_log(stream: io.StringIO) -> None:
    logs.setup(json=True, secrets=["s3cr3t-client-value"], stream=stream)
    log = logging.getLogger("syncd.test")
    log.error("login failed with client_secret=%s", "s3cr3t-client-value")
    log.warning("sent headers {'Authorization': 'Bearer pat-na1-abcdef123456'}")
    log.info("token refresh", extra={"detail": "access_token=xyz987secretvalue&x=1"})
    try:
        raise RuntimeError("refused: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig")
    except RuntimeError:
        log.exception("call failed")
    text = stream.getvalue()
    for secret in ("s3cr3t-client-value", "pat-na1-abcdef123456", "xyz987secretvalue", "eyJhbG"):
        assert secret not in text
    assert text.count("***") >= 4
    assert "login failed with client_secret=***" in text
