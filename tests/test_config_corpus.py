"""A corpus of broken configurations, each a small edit of the shipped files, run through
the real command line: every one answers exit 2, names the file, the line and the key,
and prints no traceback."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from syncd.cli.app import main

ROOT = Path(__file__).resolve().parents[1]
FILES = ("syncd.yaml", "fields.yaml", "stages.yaml")
CREDENTIALS = ("HUBSPOT_ACCESS_TOKEN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET")
Edit = Callable[[Path], None]


def replace(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"the shipped file changed: {old!r} is gone"
        return text.replace(old, new, count)

    return edit


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


def under(section: str, line: str) -> Callable[[str], str]:
    """Add ``line`` (indented) as the first key of the systems section ``section``."""
    return replace(f"  {section}:\n", f"  {section}:\n    {line}\n")


@dataclass(frozen=True)
class Case:
    id: str
    file: str
    """The file the edit is made in."""
    edit: Callable[[str], str] | bytes
    """A text edit, or the bytes the file becomes."""
    key: str
    """The key the answer must name."""
    blamed: str = ""
    """The file the answer must blame (default: the edited one)."""
    says: str = ""
    """Words the answer must contain."""
    command: tuple[str, ...] = ("validate", "--offline")
    env: dict[str, str] = field(default_factory=dict)
    line: bool = True
    """Whether the answer can give a line (not for an environment variable)."""
    extra: dict[str, bytes] = field(default_factory=dict)
    """More files written beside the three."""


SYNCD = "syncd.yaml"
FIELDS = "fields.yaml"
STAGES = "stages.yaml"
HUBSPOT_TOKEN = "pat-na1-0f8e1c2d-3b4a-5c6d-7e8f-9a0b1c2d3e4f"

CASES = [
    # -- content that is not YAML text ----------------------------------------------
    Case("syncd-latin1", SYNCD, lambda t: t + "# caf\xe9\n", "(file)", says="UTF-8"),
    Case("syncd-nul", SYNCD, lambda t: t + "extra: \x00\n", "(syntax)"),
    Case("syncd-unclosed", SYNCD, replace("crm: salesforce", "crm: [salesforce"), "(syntax)"),
    Case("syncd-duplicate-key", SYNCD, append("crm: salesforce\n"), "(syntax)"),
    Case("syncd-tabs", SYNCD, replace("  company: 30", "\tcompany: 45"), "(syntax)"),
    Case("syncd-binary", SYNCD, bytes(range(256)) * 4, "(file)"),
    Case("fields-latin1", FIELDS, lambda t: t.replace("email:", "e\xe9mail:", 1), "(file)"),
    Case("fields-nul", FIELDS, lambda t: "\x00" + t, "(syntax)"),
    Case("fields-binary", FIELDS, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "(file)"),
    Case("stages-latin1", STAGES, lambda t: t + "# \xff\xfe\n", "(file)"),
    Case("stages-bell", STAGES, lambda t: t.replace("name: mql", "name: mql\x07", 1), "(syntax)"),
    Case("stages-syntax", STAGES, replace("    - name: sal", "    - name: sal: x"), "(syntax)"),
    # -- sections of the wrong shape -----------------------------------------------
    Case("syncd-a-list", SYNCD, lambda t: "- store\n- crm\n", "(top)"),
    Case("syncd-empty", SYNCD, lambda t: "", "marketing"),
    Case("people-a-list", SYNCD, replace("people:\n", "people:\n  - x\npeople_old:\n"), "people"),
    Case("daemon-a-list", SYNCD, replace("daemon:\n", "daemon: [1, 2]\ndaemon_old:\n"), "daemon"),
    Case("systems-a-list", SYNCD, replace("systems:\n", "systems: []\nsystems_old:\n"), "systems"),
    Case(
        "system-a-list",
        SYNCD,
        replace("  salesforce:\n    connector", "  salesforce: [x]\n  sf_old:\n    connector"),
        "systems.salesforce",
    ),
    Case(
        "cadence-a-number",
        SYNCD,
        replace("cadence_seconds:\n", "cadence_seconds: 60\nc:\n"),
        "cadence_seconds",
    ),
    Case("fields-a-list", FIELDS, lambda t: "- email\n- name\n", "(top)"),
    Case("fields-empty", FIELDS, lambda t: "", "(top)"),
    Case("fields-comments-only", FIELDS, lambda t: "# nothing yet\n", "(top)"),
    Case(
        "fields-person-a-list",
        FIELDS,
        replace("person:\n", "person: [email]\nperson_old:\n"),
        "person",
    ),
    Case(
        "fields-person-scalar",
        FIELDS,
        replace("person:\n", "person: email\nperson_old:\n"),
        "person",
    ),
    Case(
        "fields-rule-scalar",
        FIELDS,
        replace("  title:\n    hubspot: jobtitle\n    salesforce: Title\n", "  title: Title\n"),
        "person.title",
    ),
    Case("stages-a-list", STAGES, lambda t: "- lead\n- mql\n", "(top)"),
    Case("stages-empty", STAGES, lambda t: "", "(top)"),
    Case(
        "stages-person-empty",
        STAGES,
        replace(
            "  stages:\n    - name: subscriber", "  stages: []\n  old:\n    - name: subscriber"
        ),
        "person",
    ),
    Case(
        "stages-item-scalar",
        STAGES,
        replace("    - name: sal\n", "    - sal\n    - name: sal_\n"),
        "person.stages.3",
    ),
    Case(
        "stages-values-scalar",
        STAGES,
        replace("hubspot: {lifecyclestage: subscriber}", "hubspot: subscriber"),
        "person.stages.0.hubspot",
    ),
    # -- syncd.yaml values -----------------------------------------------------------
    Case(
        "cadence-zero",
        SYNCD,
        replace("  person: 30", "  person: 0"),
        "cadence_seconds",
        says="API calls",
    ),
    Case("cadence-negative", SYNCD, replace("  deal: 30", "  deal: -5"), "cadence_seconds"),
    Case(
        "cadence-below-floor",
        SYNCD,
        replace("  company: 30", "  company: 5"),
        "cadence_seconds",
        says="at least 10",
    ),
    Case(
        "cadence-text", SYNCD, replace("  person: 30", "  person: often"), "cadence_seconds.person"
    ),
    Case(
        "cadence-unknown-object",
        SYNCD,
        replace("  deal: 30", "  deal: 30\n  invoice: 60"),
        "cadence_seconds",
        says="invoice",
    ),
    Case(
        "becomes-opportunity",
        SYNCD,
        replace("becomes: Lead", "becomes: Opportunity"),
        "people.new_marketing_person_becomes",
        says="Contact",
    ),
    Case(
        "recycle-reason-unknown",
        SYNCD,
        replace("recycle_reason_field: recycle_reason", "recycle_reason_field: why"),
        "people.recycle_reason_field",
    ),
    Case(
        "attribution-unknown",
        SYNCD,
        replace("attribution: [contact_roles,", "attribution: [everyone,"),
        "deals.attribution.0",
    ),
    Case(
        "handoff-unknown",
        SYNCD,
        replace("handoff_stage: mql", "handoff_stage: qualified"),
        "report.handoff_stage",
    ),
    Case(
        "sla-negative",
        SYNCD,
        replace("speed_to_lead_sla_hours: 24", "speed_to_lead_sla_hours: -1"),
        "report.speed_to_lead_sla_hours",
    ),
    Case("days-zero", SYNCD, replace("  days: 90", "  days: 0"), "report.days"),
    Case(
        "retention-zero",
        SYNCD,
        replace("journal_retention_days: 90", "journal_retention_days: 0"),
        "journal_retention_days",
    ),
    Case("days-text", SYNCD, replace("  days: 90", "  days: ninety"), "report.days"),
    Case(
        "lease-zero",
        SYNCD,
        replace("lease_seconds: 30", "lease_seconds: 0"),
        "daemon.lease_seconds",
    ),
    Case(
        "shutdown-negative",
        SYNCD,
        replace("shutdown_timeout_seconds: 60", "shutdown_timeout_seconds: -1"),
        "daemon.shutdown_timeout_seconds",
    ),
    Case(
        "resync-poll-zero",
        SYNCD,
        replace("resync_poll_seconds: 2", "resync_poll_seconds: 0"),
        "daemon.resync_poll_seconds",
    ),
    Case(
        "metrics-nonsense",
        SYNCD,
        replace("metrics: 127.0.0.1:9464", "metrics: nonsense"),
        "daemon.metrics",
        says="HOST:PORT",
    ),
    Case(
        "metrics-port-too-big",
        SYNCD,
        replace("metrics: 127.0.0.1:9464", "metrics: 127.0.0.1:99999"),
        "daemon.metrics",
    ),
    Case(
        "metrics-port-a-name",
        SYNCD,
        replace("metrics: 127.0.0.1:9464", "metrics: localhost:http"),
        "daemon.metrics",
    ),
    Case(
        "log-json-maybe",
        SYNCD,
        replace("daemon:\n", "daemon:\n  log_json: maybe\n"),
        "daemon.log_json",
    ),
    Case(
        "daemon-unknown-key",
        SYNCD,
        replace("lease_seconds: 30", "lease_second: 30"),
        "daemon.lease_second",
        says="did you mean lease_seconds",
    ),
    Case(
        "top-unknown-key",
        SYNCD,
        replace("cadence_seconds:", "cadence_second:"),
        "cadence_second",
        says="did you mean cadence_seconds",
    ),
    Case(
        "store-no-scheme",
        SYNCD,
        replace("store: sqlite:///syncd.db", "store: syncd.db"),
        "store",
        says="sqlite:///",
    ),
    Case(
        "store-postgres",
        SYNCD,
        replace("store: sqlite:///syncd.db", "store: postgres://syncd@db/syncd"),
        "store",
        says="postgresql+psycopg://syncd@db/syncd",
    ),
    Case(
        "store-postgresql-psycopg2",
        SYNCD,
        replace("store: sqlite:///syncd.db", "store: postgresql://syncd@db/syncd"),
        "store",
        says="postgresql+psycopg://",
    ),
    Case(
        "store-mysql",
        SYNCD,
        replace("store: sqlite:///syncd.db", "store: mysql://syncd@db/syncd"),
        "store",
        says="postgresql+psycopg://",
    ),
    Case(
        "store-bad-url", SYNCD, replace("store: sqlite:///syncd.db", "store: '://nowhere'"), "store"
    ),
    Case(
        "marketing-misspelt",
        SYNCD,
        replace("marketing: hubspot", "marketing: hubspt"),
        "marketing",
        says="did you mean hubspot",
    ),
    Case("crm-same-as-marketing", SYNCD, replace("crm: salesforce", "crm: hubspot"), "crm"),
    Case(
        "connector-unknown",
        SYNCD,
        replace("connector: hubspot", "connector: pardot"),
        "systems.hubspot.connector",
    ),
    Case(
        "connector-unknown-system",
        SYNCD,
        lambda t: t.replace("marketing: hubspot", "marketing: pardot").replace(
            "  hubspot:\n    connector: hubspot", "  pardot:\n    connector: pardot"
        ),
        "systems.pardot.connector",
        says="unknown connector 'pardot'",
    ),
    Case(
        "timeout-a-number",
        SYNCD,
        replace("timeout: [5, 30]", "timeout: 5"),
        "systems.hubspot.timeout",
        says="[connect, read]",
    ),
    Case(
        "timeout-a-word",
        SYNCD,
        replace("timeout: [5, 30]", "timeout: fast"),
        "systems.hubspot.timeout",
    ),
    Case(
        "timeout-zero",
        SYNCD,
        replace("timeout: [5, 30]", "timeout: [5, 0]"),
        "systems.hubspot.timeout",
    ),
    Case(
        "token-pasted",
        SYNCD,
        under("hubspot", f"access_token: {HUBSPOT_TOKEN}"),
        "systems.hubspot.access_token",
        says="does not belong in YAML",
    ),
    Case(
        "secret-pasted",
        SYNCD,
        under("salesforce", "client_secret: 8123456789012345678"),
        "systems.salesforce.client_secret",
    ),
    Case(
        "password-pasted",
        SYNCD,
        under("salesforce", "password: hunter2"),
        "systems.salesforce.password",
    ),
    Case(
        "refresh-token-pasted",
        SYNCD,
        under("hubspot", "refresh_token: 5Aep861abc.def"),
        "systems.hubspot.refresh_token",
    ),
    Case(
        "token-in-env-key",
        SYNCD,
        replace("access_token_env: HUBSPOT_ACCESS_TOKEN", f"access_token_env: {HUBSPOT_TOKEN}"),
        "systems.hubspot.access_token_env",
        says="not the secret itself",
    ),
    Case(
        "secret-in-env-key",
        SYNCD,
        replace(
            "client_secret_env: SALESFORCE_CLIENT_SECRET",
            "client_secret_env: '8123456789012345678'",
        ),
        "systems.salesforce.client_secret_env",
    ),
    Case(
        "client-id-in-env-key",
        SYNCD,
        replace(
            "client_id_env: SALESFORCE_CLIENT_ID", "client_id_env: AbCdEf0123456789GhIjKl3MVG9"
        ),
        "systems.salesforce.client_id_env",
        says="looks like a token",
    ),
    Case(
        "budget-words",
        SYNCD,
        under("hubspot", "daily_budget: lots"),
        "systems.hubspot.daily_budget",
    ),
    Case(
        "budget-over-100-percent",
        SYNCD,
        under("salesforce", 'daily_budget: "150%"'),
        "systems.salesforce.daily_budget",
    ),
    Case(
        "budget-negative",
        SYNCD,
        under("hubspot", "daily_budget: -5"),
        "systems.hubspot.daily_budget",
    ),
    Case(
        "settle-words",
        SYNCD,
        replace("search_settle_seconds: 5", "search_settle_seconds: soon"),
        "systems.hubspot.search_settle_seconds",
    ),
    Case(
        "host-no-scheme",
        SYNCD,
        replace("host: https://api.hubapi.com", "host: api.hubapi.com"),
        "systems.hubspot.host",
    ),
    Case(
        "login-url-no-scheme",
        SYNCD,
        replace(
            "login_url: https://YOUR-DOMAIN.my.salesforce.com",
            "login_url: YOUR-DOMAIN.my.salesforce.com",
        ),
        "systems.salesforce.login_url",
    ),
    Case(
        "allow-save-maybe",
        SYNCD,
        replace("duplicate_rule_allow_save: false", "duplicate_rule_allow_save: maybe"),
        "systems.salesforce.duplicate_rule_allow_save",
    ),
    Case(
        "ca-bundle-missing",
        SYNCD,
        under("salesforce", "ca_bundle: missing.pem"),
        "systems.salesforce.ca_bundle",
    ),
    Case(
        "partner-id-a-list",
        SYNCD,
        replace("partner_id_field: syncd_salesforce_id", "partner_id_field: [a, b]"),
        "systems.hubspot.partner_id_field",
    ),
    Case(
        "partner-id-missing",
        SYNCD,
        replace("    partner_id_field: Syncd_HubSpot_Id__c", "    # partner_id_field"),
        "systems.salesforce.partner_id_field",
    ),
    Case(
        "fields-file-missing",
        SYNCD,
        replace("fields: fields.yaml", "fields: feilds.yaml"),
        "fields",
        says="cannot read",
    ),
    Case("stages-file-a-folder", SYNCD, replace("stages: stages.yaml", "stages: ."), "stages"),
    Case(
        "secrets-file-missing",
        SYNCD,
        replace("# secrets_file: /etc/syncd/secrets.env", "secrets_file: secrets.env"),
        "secrets_file",
    ),
    # -- fields.yaml -----------------------------------------------------------------
    Case(
        "field-key-misspelt",
        FIELDS,
        replace(
            "    salesforce: FirstName\n", "    salesforce: FirstName\n    blank_overwrite: true\n"
        ),
        "person.first_name.blank_overwrite",
        says="did you mean blank_overwrites",
    ),
    Case(
        "field-direction-misspelt",
        FIELDS,
        replace("    direction: to_crm", "    direcion: to_crm"),
        "person.lead_score.direcion",
        says="did you mean direction",
    ),
    Case(
        "field-conflict-unknown",
        FIELDS,
        replace("    conflict: marketing_wins", "    conflict: sales_wins"),
        "person.lead_source.conflict",
    ),
    Case(
        "field-direction-unknown",
        FIELDS,
        replace("    direction: to_crm", "    direction: sideways"),
        "person.lead_score.direction",
    ),
    Case(
        "field-type-unknown",
        FIELDS,
        replace("    type: number\n    direction", "    type: integer\n    direction"),
        "person.lead_score.type",
    ),
    Case(
        "field-match-maybe",
        FIELDS,
        replace("    match: true", "    match: sometimes"),
        "company.domain.match",
    ),
    Case(
        "field-blank-overwrites-maybe",
        FIELDS,
        replace(
            "    salesforce: LastName\n",
            "    salesforce: LastName\n    blank_overwrites: perhaps\n",
        ),
        "person.last_name.blank_overwrites",
    ),
    Case(
        "field-system-unknown",
        FIELDS,
        replace("    salesforce: Title\n", "    salesforce: Title\n    pardot: title\n"),
        "person.title.pardot",
        says="unknown system",
    ),
    Case(
        "field-native-a-list",
        FIELDS,
        replace("    salesforce: Email", "    salesforce: [Email]"),
        "person.email.salesforce",
    ),
    Case(
        "field-object-unknown",
        FIELDS,
        replace("\ncompany:\n", "\ncompanies:\n"),
        "companies",
        says="did you mean company",
    ),
    Case("field-email-missing", FIELDS, replace("  email:\n", "  e_mail:\n"), "person"),
    Case(
        "field-target-unknown",
        FIELDS,
        replace("    target: company\n", "    target: account\n"),
        "person.account.target",
    ),
    Case(
        "field-values-half",
        FIELDS,
        replace("      - {hubspot: RETAIL, salesforce: Retail}", "      - {hubspot: RETAIL}"),
        "company.industry.values.6",
    ),
    # -- stages.yaml -----------------------------------------------------------------
    Case(
        "stage-recycle-maybe",
        STAGES,
        replace("      recycle: true", "      recycle: maybe"),
        "person.stages.8.recycle",
    ),
    Case(
        "stage-outcome-tie",
        STAGES,
        replace("outcome: won", "outcome: tie"),
        "deal.stages.5.outcome",
    ),
    Case(
        "stage-duplicate",
        STAGES,
        replace("    - name: sql\n", "    - name: sal\n"),
        "person.stages.4.name",
        says="duplicate",
    ),
    Case("stage-moves-sideways", STAGES, replace("moves: any", "moves: sideways"), "deal.moves"),
    Case(
        "stage-people-unknown",
        STAGES,
        replace("people: customer", "people: champion"),
        "deal.stages.5.people",
        says="no person stage champion",
    ),
    Case(
        "stage-object-key-misspelt",
        STAGES,
        replace("  stages:\n    - name: subscriber", "  stage:\n    - name: subscriber"),
        "person.stage",
        says="did you mean stages",
    ),
    Case(
        "stage-label-misspelt",
        STAGES,
        replace("      label: Marketing qualified lead", "      lable: Marketing qualified lead"),
        "person.stages.2.lable",
        says="did you mean label",
    ),
    Case(
        "stage-system-unknown",
        STAGES,
        replace("    - name: mql\n", "    - name: mql\n      pardot: {x: y}\n"),
        "person.stages.2.pardot",
    ),
    Case(
        "stage-object-unknown",
        STAGES,
        replace("person:\n", "people:\n", 1),
        "people",
        says="unknown object people",
    ),
    Case(
        "stage-read-wrong-stage",
        STAGES,
        replace("Open - Not Contacted: lead", "Open - Not Contacted: sql"),
        "person.read.salesforce.Status.Open - Not Contacted",
    ),
    Case(
        "stage-ignore-mapped",
        STAGES,
        lambda t: t.replace(
            "person:\n  read:",
            "person:\n  ignore:\n    salesforce: {Status: [Qualified]}\n  read:",
            1,
        ),
        "person.ignore.salesforce.Status.0",
    ),
    # -- the secrets file ------------------------------------------------------------
    Case(
        "secrets-latin1",
        SYNCD,
        replace("# secrets_file: /etc/syncd/secrets.env", "secrets_file: secrets.env"),
        "(file)",
        blamed="secrets.env",
        says="UTF-8",
        extra={"secrets.env": b"HUBSPOT_ACCESS_TOKEN=abc\nSALESFORCE_CLIENT_SECRET=s\xe9cret\n"},
    ),
    Case(
        "secrets-binary",
        SYNCD,
        replace("# secrets_file: /etc/syncd/secrets.env", "secrets_file: secrets.env"),
        "(file)",
        blamed="secrets.env",
        extra={"secrets.env": bytes(range(256))},
    ),
    Case(
        "secrets-a-folder",
        SYNCD,
        replace("# secrets_file: /etc/syncd/secrets.env", "secrets_file: ."),
        "secrets_file",
    ),
    # -- the environment -------------------------------------------------------------
    Case(
        "env-store-mysql",
        SYNCD,
        lambda t: t,
        "SYNCD_STORE_URL",
        blamed="SYNCD_STORE_URL",
        env={"SYNCD_STORE_URL": "mysql://db/syncd"},
        line=False,
    ),
    Case(
        "env-store-postgres",
        SYNCD,
        lambda t: t,
        "SYNCD_STORE_URL",
        blamed="SYNCD_STORE_URL",
        env={"SYNCD_STORE_URL": "postgres://db/syncd"},
        says="postgresql+psycopg://db/syncd",
        line=False,
    ),
    # -- found by other commands -----------------------------------------------------
    Case(
        "status-store-postgres",
        SYNCD,
        replace("store: sqlite:///syncd.db", "store: postgres://syncd@db/syncd"),
        "store",
        command=("status",),
    ),
    Case(
        "report-handoff",
        SYNCD,
        replace("handoff_stage: mql", "handoff_stage: qualified"),
        "report.handoff_stage",
        command=("report",),
    ),
    Case(
        "resync-list-cadence",
        SYNCD,
        replace("  person: 30", "  person: 0"),
        "cadence_seconds",
        command=("resync", "--list"),
    ),
    Case(
        "explain-bad-store",
        SYNCD,
        replace("store: sqlite:///syncd.db", "store: mysql://x/y"),
        "store",
        command=("explain", "ada@example.com"),
    ),
    Case(
        "once-unset-credentials",
        SYNCD,
        lambda t: t,
        "systems.hubspot.access_token_env",
        command=("once",),
        says="HUBSPOT_ACCESS_TOKEN",
    ),
    Case(
        "validate-unset-credentials",
        SYNCD,
        lambda t: t,
        "systems.salesforce.client_secret_env",
        command=("validate",),
        says="SALESFORCE_CLIENT_SECRET",
    ),
]


def _write(folder: Path, case: Case) -> Path:
    for name in FILES:
        shutil.copy(ROOT / "config" / name, folder / name)
    for name, content in case.extra.items():
        (folder / name).write_bytes(content)
    target = folder / case.file
    if isinstance(case.edit, bytes):
        target.write_bytes(case.edit)
    else:
        text = (ROOT / "config" / case.file).read_text(encoding="utf-8")
        target.write_bytes(case.edit(text).encode("latin-1" if "latin1" in case.id else "utf-8"))
    return folder / SYNCD


def _answer(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["syncd", *args])
    with pytest.raises(SystemExit) as exited:
        main()  # any other exception fails the test: a traceback
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out + captured.err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_broken_configuration_gets_a_clear_answer(
    case: Case,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in (*CREDENTIALS, "SYNCD_STORE_URL", "SYNCD_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    config = _write(tmp_path, case)
    code, output = _answer([*case.command, "--config", str(config)], monkeypatch, capsys)
    assert "Traceback" not in output
    assert code == 2, output
    blamed = case.blamed or case.file
    assert blamed in output and case.key in output, output
    if case.line:
        located = re.compile(rf"{re.escape(blamed)}:\d+: {re.escape(case.key)}")
        assert located.search(output), output
    assert case.says in output, output


def test_the_corpus_is_large_and_every_kind_is_in_it() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    assert {c.file for c in CASES} == set(FILES)


def test_every_unset_credential_is_reported_at_once_with_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    config = _write(tmp_path, Case("", SYNCD, lambda t: t, ""))
    code, output = _answer(["once", "--config", str(config)], monkeypatch, capsys)
    assert code == 2
    lines = config.read_text().splitlines()
    for name in CREDENTIALS:
        line = next(i for i, text in enumerate(lines, 1) if f"_env: {name}" in text)
        assert f"syncd.yaml:{line}: " in output and name in output, output


def test_problems_of_every_file_come_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a refused section of syncd.yaml no longer hides the other files' problems
    config = _write(tmp_path, Case("", SYNCD, replace("  person: 30", "  person: 0"), ""))
    fields = tmp_path / FIELDS
    fields.write_text(fields.read_text().replace("conflict: marketing_wins", "conflict: never"))
    stages = tmp_path / STAGES
    stages.write_text(stages.read_text().replace("      recycle: true", "      recycle: maybe", 1))
    code, output = _answer(["validate", "--offline", "-c", str(config)], monkeypatch, capsys)
    assert code == 2
    for key in ("cadence_seconds", "person.lead_source.conflict", "person.stages.8.recycle"):
        assert key in output, output


def _busy_port() -> socket.socket:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    return listener


def test_run_without_credentials_exits_at_once_naming_each(tmp_path: Path) -> None:
    config = _write(
        tmp_path, Case("", SYNCD, replace("metrics: 127.0.0.1:9464", "metrics: ''"), "")
    )
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    answer = subprocess.run(
        [sys.executable, "-c", "from syncd.cli.app import main; main()", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    output = answer.stdout + answer.stderr
    assert "Traceback" not in output
    assert answer.returncode == 2, output
    for name in CREDENTIALS:
        assert re.search(rf"syncd\.yaml:\d+: systems\.\w+\.\w+_env: .*{name}", output), output


@pytest.mark.parametrize("where", ["busy", "not-here"])
def test_run_with_a_metrics_address_it_cannot_have(tmp_path: Path, where: str) -> None:
    listener = _busy_port()
    address = f"127.0.0.1:{listener.getsockname()[1]}" if where == "busy" else "192.0.2.1:9464"
    try:
        config = _write(
            tmp_path,
            Case("", SYNCD, replace("metrics: 127.0.0.1:9464", f"metrics: {address}"), ""),
        )
        answer = subprocess.run(
            [
                sys.executable,
                "-c",
                "from syncd.cli.app import main; main()",
                "run",
                "-c",
                str(config),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=tmp_path,
        )
    finally:
        listener.close()
    output = answer.stdout + answer.stderr
    assert "Traceback" not in output
    assert answer.returncode == 2, output
    assert re.search(r"syncd\.yaml:\d+: daemon\.metrics: cannot listen", output), output
