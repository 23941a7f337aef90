"""Failures say what to do: what happened in words, what to check (the variable, the
setting of syncd.yaml), and the system's own message trimmed on the line below."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.hubspot.connector import HubSpotConnector
from syncd.errors import ConnectorError, TransientError, trim
from syncd.harness import sandbox
from syncd.retry import RetryPolicy
from tests.daemons import ROOT

SYNCD = [sys.executable, "-c", "from syncd.cli.app import main; main()"]
NGINX_504 = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def _validate(config: Path) -> dict:
    done = subprocess.run(
        [*SYNCD, "validate", "--json", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    return json.loads(done.stdout)


def _problem(answer: dict, system: str) -> list[str]:
    (problem,) = [p for p in answer["problems"] if p["system"] == system]
    assert problem["blocking"] is True
    return [line.strip() for line in problem["message"].splitlines()]


def test_a_refused_secret_names_the_variables_and_keeps_salesforces_words(
    tmp_path: Path,
) -> None:
    with sandbox.start(tmp_path, sample=False) as box:
        secrets = tmp_path / "secrets.env"
        secrets.write_text(
            re.sub(
                r"SALESFORCE_CLIENT_SECRET=.*",
                "SALESFORCE_CLIENT_SECRET=wrong",
                secrets.read_text(),
            )
        )
        answer = _validate(box.config_path)
    words, check, said = _problem(answer, "salesforce")
    assert words.startswith("Salesforce refused to sign syncd in at https://")
    assert "HTTP 400, invalid_client" in words and "not reachable" not in words
    assert check.startswith("check SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET")
    assert "secrets file (secrets_file in syncd.yaml)" in check
    assert said == "salesforce said: invalid_client: invalid client credentials"


def test_a_certificate_not_trusted_names_ca_bundle(tmp_path: Path) -> None:
    with sandbox.start(tmp_path, sample=False) as box:
        text = box.config_path.read_text()
        kept = [line for line in text.splitlines() if "ca_bundle" not in line]
        assert len(kept) < len(text.splitlines())
        box.config_path.write_text("\n".join(kept) + "\n")
        answer = _validate(box.config_path)
    words, check, said = _problem(answer, "salesforce")
    assert words == (
        "the TLS certificate of syncd-emulator.my.salesforce.com is not trusted,"
        " so syncd did not talk to it"
    )
    assert check.startswith("check ca_bundle (systems.salesforce.ca_bundle in syncd.yaml)")
    assert said.startswith("the error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify")
    assert "_ssl.c" not in said and "HTTPSConnectionPool" not in said


def _connector(host: str) -> HubSpotConnector:
    return HubSpotConnector(
        host=host,
        access_token="pat-test",
        field_map={},
        field_types={},
        timeout=(1.0, 2.0),
        retry=RetryPolicy(attempts=2, initial=0.01, maximum=0.01, sleep=lambda _: None),
    )


def test_a_host_that_is_down_says_so_and_names_the_host_setting() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connector = _connector(f"http://127.0.0.1:{port}")
    with pytest.raises(TransientError) as raised:
        connector.check()
    words, check, said = str(raised.value).splitlines()
    assert words == f"hubspot: could not connect to 127.0.0.1:{port}: the connection was refused"
    assert check.strip().startswith("check host (systems.hubspot.host in syncd.yaml")
    assert said.strip() == "the error: [Errno 111] Connection refused"
    assert "MaxRetryError" not in str(raised.value)


class _GatewayTimeout(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = NGINX_504.encode()
        self.send_response(504)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    """A proxy that answers every request with nginx's HTML 504 page."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GatewayTimeout)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_html_504_page_is_reduced_to_its_title(gateway: str) -> None:
    with pytest.raises(TransientError) as raised:
        _connector(gateway).check()
    error = raised.value
    assert error.status == 504
    words, check, said = str(error).splitlines()
    assert words == "hubspot: the request failed: HTTP 504 from HubSpot or a proxy before it"
    assert "systems.hubspot.host" in check and "retried" in check
    assert said.strip() == "hubspot said: 504 Gateway Time-out"
    assert "<" not in str(error)


def test_trim_keeps_one_line_of_at_most_200_characters() -> None:
    assert trim(NGINX_504) == "504 Gateway Time-out"
    assert trim("<html><body><h1>Bad &amp; gone</h1><p>more</p></body></html>") == "Bad & gone"
    assert trim("first line\nsecond line") == "first line"
    assert trim("value must be < 5 and > 2") == "value must be < 5 and > 2"
    long = trim("x" * 500)
    assert len(long) == 200 and long.endswith("…")


def test_an_error_reads_as_words_check_and_what_was_said() -> None:
    error = ConnectorError("crm", "it failed", check="check X", said="<title>Down</title>")
    assert str(error).splitlines() == ["crm: it failed", "  check X", "  crm said: Down"]
    assert error.headline == "crm: it failed"
    assert str(ConnectorError("crm", "plain")) == "crm: plain"
