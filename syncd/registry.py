"""The only module of syncd/ that knows the connectors by name."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from syncd.abc import Connector
from syncd.config.checks import on_this_machine
from syncd.config.settings import (
    OBJECTS,
    STAGE_FIELD,
    Check,
    Config,
    SyncdSettings,
    SystemSettings,
)
from syncd.config.yamlfile import YamlDocument, load_yaml
from syncd.daemon import pacing
from syncd.errors import ConfigError, ConfigProblem
from syncd.retry import RetryPolicy
from syncd.sync import gate, outcomes, sla
from syncd.sync.reconcile import Rules
from syncd.sync.sweeps import CALLS_PER_CYCLE, SweepPeriods
from syncd.sync.vocabulary import Vocabulary

KINDS = {
    "hubspot": {"company": ["companies"], "person": ["contacts"], "deal": ["deals"]},
    "salesforce": {"company": ["Account"], "person": ["Lead", "Contact"], "deal": ["Opportunity"]},
}
"""Per connector, the native kinds of each object; the first is the one syncd creates."""
WRITE_BACK = {"hubspot": "with_next_update", "salesforce": "immediate"}
"""Per connector, when its records learn the id of a partner syncd created for them, unless
``partner_id_write_back`` says otherwise. HubSpot waits for the next update: writing the
id at once costs a batch per 100 creates, and the next cycle's search then reads every
such contact again (with its associations) only to settle it. Salesforce writes it at
once: a batch per 200 creates, read back at 2,000 a page."""


def write_back(config: Config, name: str) -> str:
    """``immediate`` or ``with_next_update`` for system ``name``."""
    system = config.syncd.systems[name]
    return system.partner_id_write_back or WRITE_BACK.get(system.connector, "immediate")


SWEPT = {"hubspot": frozenset({"person", "deal"}), "salesforce": frozenset()}
"""Per connector, the objects whose sweeps make calls of their own (``syncd.sync.sweeps``):
HubSpot's association reads of contacts and deals. HubSpot's deletion slices ride in the
scan's search and Salesforce's contact-role slices in its ``/composite``: no call."""
DAILY_LIMITS = {"hubspot": 650_000, "salesforce": 100_000}
"""Published daily API limits, the default of ``systems.<name>.daily_limit``.

HubSpot, private apps (service keys and static tokens) on Professional: 650,000 a day
per account, Enterprise 1,000,000, each API Limit Increase pack 1,000,000 more
(https://developers.hubspot.com/changelog/increasing-our-api-limits; the private-apps
page https://developers.hubspot.com/docs/apps/legacy-apps/private-apps/overview lists
625,000 for Professional). Salesforce Enterprise and Professional with API access:
100,000 + 1,000 per Salesforce user licence per rolling 24 h, Unlimited and Performance
5,000 a licence (https://developer.salesforce.com/docs/platform/salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-api.html):
the default is the 100,000 base, set the org's own figure (Setup > Company Information).
"""
SETTLE_SECONDS = {"hubspot": 5.0}
"""Per connector, the default ``search_settle_seconds``: how long before now a scan
stops, for a search index that shows writes late (none: the scan reads up to now)."""
OVERLAP_MINUTES = {"hubspot": 5.0, "salesforce": 10.0}
"""Per connector, the default ``overlap_minutes``: how much later each scan window is
read a second time (search lag, commit lag)."""


def idle_calls_per_cycle(connector: str, obj: str) -> float:
    """The API calls one cycle of ``obj`` makes at most, on average, on a quiet system
    driven by ``connector``: its scan, one call (HubSpot: one search, the deletion sweep's
    slice riding in it; Salesforce: one ``/composite`` holding every kind's query and a due
    contact-role slice), plus the sweeps' budget (``syncd.sync.sweeps.CALLS_PER_CYCLE``) where
    a sweep still pays calls of its own (HubSpot's association reads of people and deals,
    while a pass is behind; over a whole pass, ceil(N / 1,000) calls per associated type).
    ``syncd.daemon.cadence`` projects the idle cost from this alone: update it when the scans or
    the sweeps change their call pattern."""
    return 1.0 + (CALLS_PER_CYCLE if obj in SWEPT[connector] else 0.0)


def scan_lags(config: Config, name: str) -> tuple[float, float]:
    """(settle seconds, overlap seconds) of system ``name``'s scans, with the defaults its
    builder uses (a test holds the two together)."""
    connector = config.syncd.systems[name].connector
    options = config.syncd.systems[name].options()
    settle = float(options.get("search_settle_seconds", SETTLE_SECONDS.get(connector, 0.0)))
    overlap = float(options.get("overlap_minutes", OVERLAP_MINUTES.get(connector, 10.0)))
    return settle, overlap * 60


def _per_kind(config: Config, name: str) -> dict[str, Any]:
    """field_map, field_types and stage_fields by native kind, for every configured object."""
    field_map: dict[str, dict[str, str]] = {}
    types: dict[str, dict[str, Any]] = {}
    stages: dict[str, list[str]] = {}
    for obj, kinds in KINDS[config.syncd.systems[name].connector].items():
        if obj not in config.fields:
            continue
        field_map.update({k: dict(v) for k, v in config.field_map(obj, name, kinds).items()})
        for kind in kinds:
            types[kind] = config.field_types(obj)
            stages[kind] = config.stage_fields(obj, name)
            if obj == "person" and name == config.syncd.marketing:  # what the gate reads
                hidden_fields = {
                    **gate.hidden_fields(config),
                    **outcomes.hidden_fields(config),
                    **sla.hidden_fields(config),
                }
                for hidden, (prop, type_) in hidden_fields.items():
                    field_map[kind][hidden], types[kind][hidden] = prop, type_
    return {"field_map": field_map, "field_types": types, "stage_fields": stages}


def written_fields(config: Config, name: str) -> dict[str, set[str]]:
    """Per native kind of system ``name``, the canonical fields syncd writes into it
    (the field flows both ways, or towards this system's role)."""
    towards = "to_crm" if name == config.syncd.crm else "to_marketing"
    written: dict[str, set[str]] = {}
    for obj, kinds in KINDS[config.syncd.systems[name].connector].items():
        rules = config.fields.get(obj, {})
        for kind, mapped in config.field_map(obj, name, kinds).items():
            written[kind] = {
                canonical for canonical in mapped if rules[canonical].direction in ("both", towards)
            }
            if obj == "person" and name == config.syncd.marketing:  # outcomes, the SLA flag
                written[kind] |= set(outcomes.hidden_fields(config)) | set(
                    sla.hidden_fields(config)
                )
    return written


def _need(config: Config, system: str, options: dict[str, Any], key: str, mode: str = "") -> str:
    env = options.get(key)
    value = config.secret(env) if env else None
    if not value:
        needs = f" (auth: {mode} needs it)" if mode else ""
        where = ["systems", system, key] if env else ["systems", system]
        message = (
            f"credential not set{needs}: put {env} in the environment or the secrets file"
            if env
            else f"missing{needs}: {key}, the environment variable holding this credential"
        )
        raise ConfigError([config.problem(where, message)])
    return value


def _problem(config: Config, system: str, key: str, message: str) -> ConfigError:
    return ConfigError([config.problem(["systems", system, key], message)])


def _credentials(
    config: Config, system: str, options: dict[str, Any], keys: list[str], mode: str
) -> list[str]:
    """The secrets named by ``keys`` (env var names), every missing one reported at once."""
    values, problems = [], []
    for key in keys:
        try:
            values.append(_need(config, system, options, key, mode))
        except ConfigError as error:
            problems += error.problems
    if problems:
        raise ConfigError(problems)
    return values


UNUSED_CREDENTIALS: dict[tuple[str, str], frozenset[str]] = {
    ("hubspot", "token"): frozenset({"client_id_env", "client_secret_env", "refresh_token_env"}),
    ("hubspot", "oauth"): frozenset({"access_token_env"}),
    ("salesforce", "jwt"): frozenset({"client_secret_env"}),
}
"""Per (connector, auth mode), the ``*_env`` keys that mode does not read: an unset
variable there is no problem."""
DEFAULT_AUTH = {"hubspot": "token", "salesforce": "client_credentials"}


def credential_problems(config: Config) -> list[ConfigProblem]:
    """Every ``*_env`` variable the chosen auth modes read that is set nowhere: all at once."""
    problems = []
    for name, system in config.syncd.systems.items():
        options = system.options()
        mode = str(options.get("auth", DEFAULT_AUTH.get(system.connector, "")))
        unused = UNUSED_CREDENTIALS.get((system.connector, mode), frozenset())
        for key, env in options.items():
            if key in unused or not str(key).endswith("_env") or not isinstance(env, str):
                continue
            if not config.secret(env):
                where = "the secrets file" if config.syncd.secrets_file else "a secrets_file"
                problems.append(
                    config.problem(
                        ["systems", name, key],
                        f"credential not set: {env} is neither in the environment nor in {where}",
                    )
                )
    return problems


def connector_problems(config: Config) -> list[ConfigProblem]:
    """Systems whose connector syncd does not know (settings cannot: only this module may)."""
    return [
        config.problem(
            ["systems", name, "connector"],
            f"unknown connector {system.connector!r} (known: {', '.join(BUILDERS)})",
        )
        for name, system in config.syncd.systems.items()
        if system.connector not in KINDS
    ]


def _timeout(options: dict[str, Any]) -> tuple[float, float]:
    raw = options.get("timeout", (5, 30))
    return (float(raw[0]), float(raw[1]))


def _minutes(options: dict[str, Any], key: str, default: float) -> timedelta:
    return timedelta(minutes=float(options.get(key, default)))


def _hubspot(config: Config, name: str, settings: SystemSettings, retry: RetryPolicy) -> Connector:
    from connectors.hubspot.auth import TOKEN_PATH, OAuthCredentials, StaticCredentials
    from connectors.hubspot.connector import HubSpotConnector

    options = settings.options()
    auth = str(options.get("auth", "token"))
    credentials: StaticCredentials | OAuthCredentials
    if auth == "token":
        (token,) = _credentials(config, name, options, ["access_token_env"], auth)
        credentials = StaticCredentials(token, name=str(options["access_token_env"]))
    elif auth == "oauth":
        keys = ["client_id_env", "client_secret_env", "refresh_token_env"]
        client_id, secret, refresh = _credentials(config, name, options, keys, auth)
        credentials = OAuthCredentials(
            client_id,
            secret,
            refresh,
            client_id_name=str(options["client_id_env"]),
            client_secret_name=str(options["client_secret_env"]),
            refresh_token_name=str(options["refresh_token_env"]),
            token_path=str(options.get("oauth_token_path", TOKEN_PATH)),
        )
    else:
        raise _problem(config, name, "auth", f"{auth!r} is not an auth mode: token or oauth")
    return HubSpotConnector(
        pacer=hubspot_pacer(settings),
        host=str(options.get("host", "https://api.hubapi.com")).rstrip("/"),
        credentials=credentials,
        **_per_kind(config, name),
        partner_id_field=settings.partner_id_field,
        timeout=_timeout(options),
        retry=retry,
        settle=timedelta(seconds=float(options.get("search_settle_seconds", 5))),
        overlap=_minutes(options, "overlap_minutes", 5),
    )


def _salesforce(
    config: Config, name: str, settings: SystemSettings, retry: RetryPolicy
) -> Connector:
    from connectors.salesforce import options as sign_in
    from connectors.salesforce.connector import SalesforceConnector

    options = settings.options()
    ca_bundle = options.get("ca_bundle")
    if ca_bundle:
        ca_bundle = str((config.path.parent / ca_bundle).resolve())
    auth, found = sign_in.read(options)
    grant = None
    if auth is not None:
        grant, found = sign_in.grant(auth, config.secret, config.path.parent)
    if auth is None or grant is None:
        doc, _ = load_yaml(config.path)
        raise ConfigError(_located(doc, config.path, name, found))
    return SalesforceConnector(
        pacer=salesforce_pacer(settings),
        login_url=auth.login_url.rstrip("/"),
        grant=grant,
        **_per_kind(config, name),
        partner_id_field=settings.partner_id_field,
        api_version=str(options.get("api_version", "60.0")),
        ca_bundle=ca_bundle,
        connect_to=auth.connect_to,
        timeout=_timeout(options),
        retry=retry,
        allow_save=_flag(name, options, "duplicate_rule_allow_save"),
        overlap=_minutes(options, "overlap_minutes", 10),
    )


PUBLISHED_RATES = {
    "general": pacing.Limit(190, 10),  # a private app, Professional and Enterprise
    "search": pacing.Limit(5, 1),
}
"""HubSpot's published limits (``syncd.daemon.pacing`` cites them): the pacing by default."""
SALESFORCE_IN_FLIGHT = 10
"""Salesforce calls syncd keeps in flight at most by default (the org allows 25 long ones)."""


def hubspot_pacer(settings: SystemSettings) -> pacing.Pacer:
    """HubSpot's pacing: the published limits, or ``rate_limit`` and ``search_rate_limit``.
    A portal on this machine (the emulators) is not paced unless a rate is set."""
    options = settings.options()
    loopback = on_this_machine(settings)
    limits = {}
    for name, key in (("general", "rate_limit"), ("search", "search_rate_limit")):
        if key in options or not loopback:
            limits[name] = pacing.limit_of(options.get(key), PUBLISHED_RATES[name])
    return pacing.Pacer("hubspot", limits)


def salesforce_pacer(settings: SystemSettings) -> pacing.Pacer:
    """Salesforce's pacing: at most ``max_concurrent_requests`` calls in flight."""
    in_flight = settings.options().get("max_concurrent_requests", SALESFORCE_IN_FLIGHT)
    return pacing.Pacer("salesforce", {}, in_flight=int(in_flight))


def _flag(name: str, options: dict[str, Any], key: str, default: bool = False) -> bool:
    """A true/false option of a system; anything else is a configuration error."""
    value = options.get(key, default)
    if not isinstance(value, bool):
        problem = ConfigProblem("syncd.yaml", None, f"systems.{name}.{key}", "true or false")
        raise ConfigError([problem])
    return value


def _located(
    doc: YamlDocument | None,
    path: Path,
    name: str,
    found: Sequence[tuple[tuple[str, ...], str]],
) -> list[ConfigProblem]:
    """Problems a connector found in its section (key path, message) at file:line:key."""
    loc = ["systems", name]
    if doc is None:
        return [ConfigProblem(str(path), None, ".".join([*loc, *k]), m) for k, m in found]
    return [doc.problem([*loc, *key], message) for key, message in found]


OPTION_CHECKS: dict[str, str] = {"salesforce": "connectors.salesforce.options"}
"""Connectors whose options module checks their section of syncd.yaml (``read``)."""


def option_problems(doc: YamlDocument, settings: SyncdSettings) -> list[ConfigProblem]:
    """Every system's connector options, checked by its connector, located to file:line:key."""
    import importlib

    problems: list[ConfigProblem] = []
    for name, system in settings.systems.items():
        module = OPTION_CHECKS.get(system.connector)
        if module is not None:
            _, found = importlib.import_module(module).read(system.options())
            problems += _located(doc, doc.path, name, found)
    return problems


def _option_check(config: Config) -> list[ConfigProblem]:
    """``option_problems`` as a check of a whole configuration."""
    doc, _ = load_yaml(config.path)
    return option_problems(doc, config.syncd) if doc is not None else []


BUILDERS: dict[str, Callable[[Config, str, SystemSettings, RetryPolicy], Connector]] = {
    "hubspot": _hubspot,
    "salesforce": _salesforce,
}
CHECKS: tuple[Check, ...] = (connector_problems, _option_check)
"""The checks of a configuration only this module can make: ``syncd.config.load`` runs
them with all the others."""


def connector(config: Config, name: str, retry: RetryPolicy | None = None) -> Connector:
    """Build the connector configured under ``systems.<name>``; a ``ConfigError`` names
    every unknown connector and every credential set nowhere, of both systems, at once."""
    problems = connector_problems(config) + credential_problems(config)
    if problems:
        raise ConfigError(problems)
    settings = config.syncd.systems[name]
    return BUILDERS[settings.connector](config, name, settings, retry or RetryPolicy())


ASSOCIATION_SWEEP_MINUTES = {"hubspot": 1440.0, "salesforce": 60.0}
"""Per connector, a pass of the association sweep when ``association_sweep_minutes`` is
unset: HubSpot's reads are the only idle calls above the scan (a day per pass);
Salesforce's contact roles ride in the scan's composite (an hour)."""


def sweep_periods(config: Config) -> dict[str, SweepPeriods]:
    """Per system, the sweep periods syncd.yaml sets (``*_sweep_minutes``), else the
    connector's defaults."""
    periods = {}
    for name, settings in config.syncd.systems.items():
        minutes = ASSOCIATION_SWEEP_MINUTES.get(settings.connector)
        default = SweepPeriods()
        if minutes is not None:
            default = SweepPeriods(default.deletions, timedelta(minutes=minutes))
        options = settings.options()
        periods[name] = SweepPeriods(
            _minutes(options, "deletion_sweep_minutes", default.deletions.total_seconds() / 60),
            _minutes(
                options, "association_sweep_minutes", default.associations.total_seconds() / 60
            ),
        )
    return periods


def rules(config: Config) -> dict[str, Rules]:
    """The merge rules of every configured object, in the order a cycle runs them."""
    problems = connector_problems(config)
    if problems:
        raise ConfigError(problems)
    return {obj: object_rules(config, obj) for obj in OBJECTS if obj in config.fields}


def object_rules(config: Config, obj: str) -> Rules:
    """The merge rules of ``obj`` from configuration."""
    fields = {n: r for n, r in config.fields[obj].items() if r.type != "stage"}
    stage_rule = config.fields[obj].get(STAGE_FIELD)
    stages = config.stages.get(obj)
    marketing_kind = KINDS[config.syncd.systems[config.syncd.marketing].connector][obj][0]
    crm_kind = KINDS[config.syncd.systems[config.syncd.crm].connector][obj][0]
    if obj == "person":
        crm_kind = config.syncd.people.new_marketing_person_becomes
    return Rules(
        fields=fields,
        stage_rule=stage_rule,
        vocabulary=(
            Vocabulary(stages, config.moves.get(obj, "forward"), config.readings.get(obj))
            if stages
            else None
        ),
        marketing=config.syncd.marketing,
        crm=config.syncd.crm,
        marketing_create_kind=marketing_kind,
        crm_create_kind=crm_kind,
        obj=obj,
        match_field=config.match_field(obj),
        reason_field=config.syncd.people.recycle_reason_field if obj == "person" else None,
        snapshot_stage=config.syncd.report.handoff_stage if obj == "person" else None,
        snapshot_fields=_snapshot_fields(config) if obj == "person" else (),
        deferred=frozenset(
            name
            for name in (config.syncd.marketing, config.syncd.crm)
            if write_back(config, name) == "with_next_update"
        ),
    )


def _snapshot_fields(config: Config) -> tuple[str, ...]:
    """The person fields kept with each hand-off: the lead-quality report's score, grade
    and source (those fields.yaml maps)."""
    report = config.syncd.report
    quality = report.quality
    named = (quality.score_field, quality.grade_field, quality.source_field or report.source_field)
    person = config.fields.get("person", {})
    return tuple(dict.fromkeys(name for name in named if name and name in person))


def start_emulators() -> dict[str, Any]:
    """Both emulators, started on loopback ports."""
    from connectors.hubspot.emulator.server import HubSpotEmulator
    from connectors.salesforce.emulator.server import SalesforceEmulator

    return {"hubspot": HubSpotEmulator().start(), "salesforce": SalesforceEmulator().start()}


def emulator_settings(
    emulators: dict[str, Any],
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(secrets, systems section of syncd.yaml) for running emulators."""
    hubspot, salesforce = emulators["hubspot"], emulators["salesforce"]
    secrets = {
        "HUBSPOT_ACCESS_TOKEN": hubspot.token,
        "HUBSPOT_CLIENT_ID": hubspot.client_id,
        "HUBSPOT_CLIENT_SECRET": hubspot.client_secret,
        "HUBSPOT_REFRESH_TOKEN": hubspot.refresh_token,
        "SALESFORCE_CLIENT_ID": salesforce.client_id,
        "SALESFORCE_CLIENT_SECRET": salesforce.client_secret,
    }
    systems = {
        "hubspot": {
            "connector": "hubspot",
            "host": hubspot.url,
            "auth": "token",
            "access_token_env": "HUBSPOT_ACCESS_TOKEN",
            "client_id_env": "HUBSPOT_CLIENT_ID",
            "client_secret_env": "HUBSPOT_CLIENT_SECRET",
            "refresh_token_env": "HUBSPOT_REFRESH_TOKEN",
            "partner_id_field": "syncd_salesforce_id",
            "search_settle_seconds": 0,
        },
        "salesforce": {
            "connector": "salesforce",
            "login_url": salesforce.my_domain_url,
            "client_id_env": "SALESFORCE_CLIENT_ID",
            "client_secret_env": "SALESFORCE_CLIENT_SECRET",
            "partner_id_field": "Syncd_HubSpot_Id__c",
            "ca_bundle": salesforce.ca_pem_path,
            # no DNS names the emulator's My Domain: connect to its loopback address
            "connect_to": {
                urlsplit(salesforce.my_domain_url).netloc: urlsplit(salesforce.url).netloc
            },
        },
    }
    return secrets, systems


EMULATOR_SALESFORCE_DAILY = 15_000
"""The Salesforce emulator's daily allocation (its default), enforced in every run."""


def emulator_limits(throttled: bool) -> dict[str, dict[str, Any]]:
    """The limits ``emulator_commands(..., throttled=...)`` makes the emulators enforce:
    HubSpot's ``rate`` and ``search_rate`` as (max calls, interval ms) and ``daily``;
    Salesforce's ``daily`` and ``concurrent``; None where not enforced."""
    from connectors.hubspot.emulator.gate import published_limits
    from connectors.salesforce.emulator.server import PRODUCTION_CONCURRENT_LIMIT

    hubspot = published_limits("enterprise")
    return {
        "hubspot": {
            "rate": hubspot.rate if throttled else None,
            "search_rate": hubspot.search_rate if throttled else None,
            "daily": hubspot.daily if throttled else None,
        },
        "salesforce": {
            "daily": EMULATOR_SALESFORCE_DAILY,
            "concurrent": PRODUCTION_CONCURRENT_LIMIT if throttled else None,
        },
    }


def emulator_commands(
    people: int,
    companies: int = 0,
    deals: int = 0,
    archived: int = 0,
    *,
    throttled: bool = False,
) -> dict[str, list[str]]:
    """Commands that run each emulator in its own process, seeded in marketing: ``people``
    contacts, ``companies`` and ``deals`` (each deal with one company and one contact),
    and ``archived`` contacts archived already. ``throttled``: the emulators enforce the
    published limits (``emulator_limits``)."""
    limits = emulator_limits(throttled)
    concurrent = limits["salesforce"]["concurrent"]
    return {
        "hubspot": [
            sys.executable,
            "-m",
            "connectors.hubspot.emulator",
            "--port",
            "0",
            "--seed-sales",
            f"{people},{companies},{deals}",
            "--seed-archived",
            str(archived),
            *(["--limits", "published", "--tier", "enterprise"] if throttled else []),
        ],
        "salesforce": [
            sys.executable,
            "-m",
            "connectors.salesforce.emulator",
            "--port",
            "0",
            "--daily-limit",
            str(limits["salesforce"]["daily"]),
            *(["--concurrent-limit", str(concurrent)] if concurrent else []),
        ],
    }
