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


def test_a_mapping_logged_as_the_message_becomes_fields_not_its_repr(
    stream: io.StringIO,
) -> None:
    logs.setup(json=True, stream=stream)
    logging.getLogger("syncd.test").info({"message": "cycle done", "read": {"hubspot": 3}})
    logging.getLogger("syncd.test").info({"read": {"salesforce": 1}})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "cycle done" and first["read"] == {"hubspot": 3}
    assert second["message"] == "" and second["read"] == {"salesforce": 1}


def test_the_level_is_named_in_any_case_and_a_wrong_name_is_refused(
    stream: io.StringIO,
) -> None:
    assert logs.level_of(None) == logging.INFO
    assert logs.level_of(None, "warning") == logging.WARNING
    assert logs.level_of("DEBUG") == logging.DEBUG
    with pytest.raises(ValueError, match="one of debug, info, warning, error"):
        logs.level_of("loud")
    logs.setup(json=True, level=logs.level_of("warning"), stream=stream)
    logging.getLogger("syncd.test").info("not shown")
    logging.getLogger("syncd.test").warning("shown")
    (line,) = stream.getvalue().splitlines()
    assert json.loads(line)["message"] == "shown"
