"""Signing in to Salesforce as real orgs require: the My Domain check, the JWT bearer flow,
tokens that expire mid-cycle, and a refused renewal that names the credential to check.

Real HTTP through simple-salesforce and requests against the emulator; no mocks."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.salesforce.auth import JWT_BEARER, JwtBearer, audience
from connectors.salesforce.emulator.server import SalesforceEmulator
from connectors.salesforce.testing import (
    connector_for,
    running_emulator,
    sample_lead,
    session_for,
)
from syncd import registry
from syncd.config import init as init_config
from syncd.config.load import load_config
from syncd.errors import AuthError, ConfigError
from syncd.harness import sandbox
from syncd.model import Change, Cursor
from syncd.retry import RetryPolicy
from tests.world import World

USER = "syncd-integration@example.com"


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with running_emulator(batch_min=1) as emulator:
        yield emulator


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _certificate(key: rsa.RSAPrivateKey) -> str:
    """A self-signed certificate, as an admin uploads to the connected app."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "syncd")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _ticking(emulator: SalesforceEmulator, ttl: int) -> None:
    """Tokens live ``ttl`` ticks of a clock that ticks each time the emulator reads it: once
    per token issued and once per data call, so with ttl 2 every other data call finds its
    token expired, deterministically."""
    ticks = itertools.count()
    emulator.auth.clock = lambda: float(next(ticks))
    emulator.set_token_ttl(ttl)


# --- the My Domain check ----------------------------------------------------------------


def _config_with(tmp_path: Path, **salesforce: object) -> Path:
    box = sandbox.start(tmp_path / "config", sample=False)
    box.stop()
    settings = box.config_path.read_text(encoding="utf-8")
    # the stopped emulator took its CA file along: a ca_bundle naming it is refused
    lines = [line for line in settings.splitlines() if not line.strip().startswith("ca_bundle:")]
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("login_url:"))
    section = next(i for i, line in enumerate(lines) if line.strip() == "salesforce:")
    for key, value in salesforce.items():
        found = next(
            (
                i
                for i, line in enumerate(lines)
                if i > section and line.strip().startswith(f"{key}:")
            ),
            None,
        )
        text = f"    {key}: {json.dumps(value)}"
        if found is None:
            lines.insert(at + 1, text)
        else:
            lines[found] = text
    box.config_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return box.config_path


@pytest.mark.parametrize(
    "url", ["https://login.salesforce.com", "https://test.salesforce.com", "https://127.0.0.1:8443"]
)
def test_validate_refuses_a_login_url_that_is_not_a_my_domain(tmp_path: Path, url: str) -> None:
    path = _config_with(tmp_path, login_url=url)
    line = 1 + next(
        i
        for i, text in enumerate(path.read_text(encoding="utf-8").splitlines())
        if "login_url:" in text
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    (problem,) = refused.value.problems
    assert (problem.file, problem.line, problem.key) == (
        str(path),
        line,
        "systems.salesforce.login_url",
    )
    assert "My Domain" in problem.message and "Setup > My Domain" in problem.message
    command = ["validate", "--offline", "--config", str(path)]
    result = subprocess.run(
        [sys.executable, "-c", "from syncd.cli.app import main; main()", *command],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
        check=False,
    )
    assert result.returncode == 2
    assert f"{path}:{line}: systems.salesforce.login_url:" in result.stderr.replace("\n", "")


def test_jwt_may_sign_in_at_login_salesforce_com_but_needs_a_user_and_key(tmp_path: Path) -> None:
    path = _config_with(tmp_path, login_url="https://login.salesforce.com", auth="jwt")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert {p.key for p in refused.value.problems} == {
        "systems.salesforce.username",
        "systems.salesforce.private_key_file",
    }
    path = _config_with(tmp_path / "2", username=USER, private_key_file="syncd.key")
    assert load_config(path).syncd.systems["salesforce"].options()["username"] == USER


def test_a_missing_credential_or_key_file_is_named_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SALESFORCE_CLIENT_SECRET", raising=False)
    path = _config_with(tmp_path)
    secrets = path.parent / "secrets.env"
    kept = [s for s in secrets.read_text().splitlines() if "CLIENT_SECRET" not in s]
    secrets.write_text("\n".join(kept) + "\n")
    with pytest.raises(ConfigError) as refused:
        registry.connector(load_config(path), "salesforce")
    (problem,) = refused.value.problems
    assert problem.key == "systems.salesforce.client_secret_env" and problem.line
    assert "SALESFORCE_CLIENT_SECRET" in problem.message
    path = _config_with(tmp_path / "2", auth="jwt", username=USER, private_key_file="gone.key")
    with pytest.raises(ConfigError) as refused:
        registry.connector(load_config(path), "salesforce")
    (problem,) = refused.value.problems
    assert problem.key == "systems.salesforce.private_key_file" and problem.line
    assert "cannot read" in problem.message and "gone.key" in problem.message


def test_the_shipped_configuration_suggests_no_login_host() -> None:
    root = Path(__file__).resolve().parents[1]
    shipped = (root / "config" / "syncd.yaml").read_text(encoding="utf-8")
    readme = (root / "README.md").read_text(encoding="utf-8")
    for text in (shipped, init_config.template("syncd.yaml"), readme):
        setting = [line for line in text.splitlines() if "login_url:" in line]
        assert setting and not any(
            "login.salesforce.com" in line or "test.salesforce.com" in line for line in setting
        )


def test_the_token_endpoint_refuses_client_credentials_off_the_my_domain(emulator) -> None:
    connector = connector_for(emulator, login_url=emulator.url, retry=RetryPolicy(attempts=1))
    with pytest.raises(AuthError, match="request not supported on this domain"):
        connector.check()
    assert connector_for(emulator).check() is None


def test_the_my_domain_host_name_is_configurable() -> None:
    with running_emulator(host_name="Acme--UAT.sandbox.my.salesforce.com") as emulator:
        assert emulator.my_domain_url.startswith("https://acme--uat.sandbox.my.salesforce.com:")
        connector = connector_for(emulator)
        connector.check()
        assert connector.api_calls()["POST oauth2/token"] == 1
        connector.close()


# --- the JWT bearer flow ----------------------------------------------------------------


def test_jwt_bearer_signs_in_and_reads(emulator) -> None:
    key = _key()
    emulator.set_jwt(_certificate(key), [USER])
    emulator.add("Lead", sample_lead(1))
    grant = JwtBearer(emulator.client_id, USER, _pem(key), "https://login.salesforce.com")
    connector = connector_for(emulator, grant=grant)
    records = [r for page in connector.changes("Lead", Cursor()) for r in page.records]
    assert len(records) == 1
    assert connector.api_calls()["POST oauth2/token"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("other key", "invalid_grant: invalid assertion"),
        ("unknown user", "invalid_grant: user hasn't approved this consumer"),
        ("audience", "invalid_grant: audience is invalid"),
        ("client id", "invalid_client_id: client identifier invalid"),
    ],
)
def test_jwt_bearer_refusals_name_what_to_check(emulator, change: str, message: str) -> None:
    key = _key()
    emulator.set_jwt(_certificate(key), [USER])
    grant = JwtBearer(
        "someone-else" if change == "client id" else emulator.client_id,
        "nobody@example.com" if change == "unknown user" else USER,
        _pem(_key() if change == "other key" else key),
        "https://elsewhere.example" if change == "audience" else "https://login.salesforce.com",
    )
    connector = connector_for(emulator, grant=grant, retry=RetryPolicy(attempts=1))
    with pytest.raises(AuthError, match=message) as refused:
        connector.check()
    assert "certificate uploaded to the connected app" in str(refused.value)


def test_an_expired_assertion_is_refused(emulator) -> None:
    key = _key()
    emulator.set_jwt(_certificate(key), [USER])
    claims = {"iss": emulator.client_id, "sub": USER, "aud": "https://login.salesforce.com"}
    http = session_for(emulator)
    url = f"{emulator.my_domain_url}/services/oauth2/token"
    for exp, status in ((-10, 400), (60, 200)):
        assertion = jwt.encode({**claims, "exp": int(time.time()) + exp}, _pem(key), "RS256")
        answer = http.post(url, data={"grant_type": JWT_BEARER, "assertion": assertion})
        assert answer.status_code == status
    assert answer.json()["instance_url"] == emulator.my_domain_url
    assert http.post(url, data={"grant_type": JWT_BEARER, "assertion": "x.y.z"}).json() == {
        "error": "invalid_grant",
        "error_description": "invalid assertion",
    }


def test_the_jwt_audience_follows_the_login_url() -> None:
    assert audience("https://acme.my.salesforce.com") == "https://login.salesforce.com"
    assert audience("https://acme--uat.sandbox.my.salesforce.com") == "https://test.salesforce.com"
    assert audience("https://test.salesforce.com") == "https://test.salesforce.com"


def test_jwt_from_syncd_yaml_reads_the_key_file_beside_it(tmp_path: Path) -> None:
    box = sandbox.start(tmp_path / "config", sample=False)
    try:
        key = _key()
        box.emulators["salesforce"].set_jwt(_certificate(key), [USER])
        (box.config_dir / "keys").mkdir()
        (box.config_dir / "keys" / "syncd.key").write_text(_pem(key), encoding="utf-8")
        text = box.config_path.read_text(encoding="utf-8").replace(
            "    login_url:",
            f"    auth: jwt\n    username: {USER}\n    private_key_file: keys/syncd.key\n"
            "    login_url:",
        )
        box.config_path.write_text(text, encoding="utf-8")
        assert "BEGIN" not in text
        config = load_config(box.config_path)
        connector = registry.connector(config, "salesforce")
        connector.check()
        connector.close()
        (box.config_dir / "keys" / "syncd.key").write_text("not a key", encoding="utf-8")
        with pytest.raises(ConfigError, match=r"systems\.salesforce\.private_key_file: .*PEM"):
            registry.connector(load_config(box.config_path), "salesforce")
        (box.config_dir / "keys" / "syncd.key").write_text(_pem(_key()), encoding="utf-8")
        refused = registry.connector(load_config(box.config_path), "salesforce")
        with pytest.raises(AuthError, match=r"matches private_key_file keys/syncd\.key"):
            refused.check()
        refused.close()
    finally:
        box.stop()


# --- tokens expiring mid-cycle ------------------------------------------------------------


def test_every_call_path_renews_an_expired_token_once(emulator) -> None:
    policy = RetryPolicy(attempts=1)  # no retry may hide a failure: only the renewal
    sf = connector_for(emulator, page_size=1, retry=policy)
    for n in range(3):
        emulator.add("Lead", sample_lead(n))
    _ticking(emulator, 2)
    sf.check()  # describes
    records = [r for page in sf.changes("Lead", Cursor()) for r in page.records]  # queryMore
    assert len(records) == 3
    creates = [
        Change(
            "create",
            "Lead",
            f"k{n}",
            None,
            {"last_name": f"N{n}", "company": "X"},
            {},
            partner_id=f"hs-{n}",
        )
        for n in range(2)
    ]
    updates = [
        Change("update", "Lead", f"u{n}", records[n].ref.id, {"title": "T"}, {}) for n in range(2)
    ]
    inserts = [Change("create", "Lead", "i", None, {"last_name": "I", "company": "X"}, {})]
    for batch in (creates, updates, inserts, creates):
        assert all(outcome.ok for outcome in sf.apply(batch))
    refused = emulator.refused_sessions()
    assert {"GET describe", "GET queryAll", "GET queryMore"} <= refused.keys()
    assert {"PATCH composite/sobjects upsert", "PATCH composite/sobjects"} <= refused.keys()
    assert "POST composite/sobjects" in refused
    assert emulator.calls()["POST oauth2/token"] == 1 + sum(refused.values())
    sf.close()


def test_tokens_expiring_mid_cycle_are_renewed_and_the_cycle_completes(world: World) -> None:
    """People, a company and a deal with two contact roles, while every Salesforce call
    but the first finds its token expired: each is renewed once and the cycle completes."""
    for n in range(2):
        world.hubspot.add_contact(
            {"email": f"p{n}@example.com", "lastname": f"P{n}", "company": "X"}
        )
    world.salesforce.add("Lead", sample_lead(7))
    company = world.hubspot.add_company({"name": "Acme", "domain": "acme.com"})
    deal = world.hubspot.add_deal(
        {
            "dealname": "Acme platform",
            "amount": "12000",
            "closedate": "2026-12-15T00:00:00.000Z",
            "pipeline": "default",
            "dealstage": "contractsent",
        }
    )
    world.hubspot.associate("deals", deal, "companies", company)
    for email in ("ada@example.com", "grace@example.com"):
        contact = world.hubspot.add_contact(
            {"email": email, "lastname": email[:3], "lifecyclestage": "opportunity"}
        )
        world.salesforce.add("Contact", {"Email": email, "LastName": email[:3]})
        world.hubspot.associate("deals", deal, "contacts", contact)
    _ticking(world.salesforce, 2)
    world.cycle()
    assert {lead["Email"] for lead in world.salesforce.records("Lead")} == {
        "p0@example.com",
        "p1@example.com",
        "lead7@example.com",
    }
    (opportunity,) = world.salesforce.records("Opportunity")
    roles = world.salesforce.records("OpportunityContactRole")
    assert opportunity["Name"] == "Acme platform" and len(roles) == 2
    world.contact("lead7@example.com")
    refused = world.salesforce.refused_sessions()
    used = {label for label in world.salesforce.calls() if label != "POST oauth2/token"}
    assert {"GET queryAll", "PATCH composite/sobjects upsert", "POST composite/sobjects"} <= used
    assert len(used - refused.keys()) <= 1  # only the very first call had a fresh token
    assert world.salesforce.calls()["POST oauth2/token"] == 1 + sum(refused.values())


def test_a_refused_renewal_stops_the_cycle_naming_the_credentials(world: World) -> None:
    world.hubspot.add_contact({"email": "before@example.com", "lastname": "Before", "company": "X"})
    world.cycle()
    world.salesforce.set_client_secret("rotated-by-the-admin")
    world.salesforce.expire_tokens()
    world.hubspot.add_contact({"email": "after@example.com", "lastname": "After", "company": "X"})
    with pytest.raises(AuthError) as refused:
        world.cycle()
    message = str(refused.value)
    assert "invalid_client" in message
    assert "check SALESFORCE_CLIENT_ID / SALESFORCE_CLIENT_SECRET" in message
    assert "run-as user" in message
    assert [lead["Email"] for lead in world.salesforce.records("Lead")] == ["before@example.com"]
