"""Checks of syncd.yaml beyond its pydantic models, each problem located to its line.

The ``systems`` sections are open (each connector reads its own keys), so the keys
every connector shares are checked here: a secret pasted into the YAML is refused
(secrets belong in the environment or the secrets file), ``*_env`` keys name an
environment variable, ``timeout`` is ``[connect, read]`` seconds, ``daily_budget``,
``daily_limit``, ``search_settle_seconds``, the pacing settings (``rate_limit``,
``search_rate_limit``: ``{requests, seconds}``; ``max_concurrent_requests``), URLs,
``ca_bundle`` and true/false flags are what they say.
Keys a connector adds are left to that connector's builder. Also here: the checks of
syncd.yaml as a whole (roles, the cadence floor) and of the files it names (readable,
a mapping of objects).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from syncd.config.yamlfile import YamlDocument, did_you_mean, load_yaml, read_text
from syncd.errors import ConfigProblem


class System(Protocol):
    """What these checks read of a system's settings (``settings.SystemSettings``): a
    protocol, because ``syncd.config.settings`` imports this module."""

    @property
    def connector(self) -> str: ...

    def options(self) -> dict[str, Any]: ...


class Settings(Protocol):
    """What these checks read of syncd.yaml's settings (``settings.SyncdSettings``)."""

    @property
    def marketing(self) -> str: ...
    @property
    def crm(self) -> str: ...
    @property
    def systems(self) -> Mapping[str, System]: ...
    @property
    def cadence_seconds(self) -> Mapping[str, int]: ...


MIN_CADENCE_SECONDS = 10
"""Every cycle reads both systems, changed or not: a faster cadence spends API calls idle."""
CADENCE_FLOOR = (
    f"at least {MIN_CADENCE_SECONDS} s; every cycle reads both systems whether anything"
    " changed or not, so a shorter cadence spends API calls doing nothing"
)

_SECRET_WORDS = ("token", "secret", "password", "passwd", "api_key", "apikey", "private_key")
_NOT_A_VALUE = ("_env", "_file", "_url", "_field", "_seconds", "_minutes")
"""A key ending so names a variable, a file, an address or a setting, never a secret."""
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_URL_KEYS = ("host", "login_url")
_FLAGS = ("duplicate_rule_allow_save",)


def looks_like_secret_key(key: str) -> bool:
    """``access_token``, ``client_secret``, ``password``: a key that would hold a secret."""
    lowered = key.lower()
    if lowered.endswith(_NOT_A_VALUE):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def env_name_problem(value: object) -> str | None:
    """Why ``value`` is no environment variable name (a pasted token, say); None if it is."""
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        return (
            "the name of an environment variable (letters, digits and _, e.g."
            " HUBSPOT_ACCESS_TOKEN), not the secret itself: put the secret in the"
            " environment or the secrets file"
        )
    mixed = (
        any(c.islower() for c in value)
        and any(c.isupper() for c in value)
        and any(c.isdigit() for c in value)
    )
    if mixed and len(value) >= 20:
        return (
            "this looks like a token, not a variable name: put the token in the environment"
            " or the secrets file and name its variable here (e.g. HUBSPOT_ACCESS_TOKEN)"
        )
    return None


def system_problems(doc: YamlDocument, systems: Mapping[str, Any]) -> list[ConfigProblem]:
    """The shared keys of every ``systems.<name>`` section, checked."""
    problems: list[ConfigProblem] = []
    for name, section in systems.items():
        for key, value in section.options().items():
            message = _option_problem(doc.path.parent, str(key), value)
            if message:
                problems.append(doc.problem(["systems", name, key], message))
    return problems


def _option_problem(folder: Path, key: str, value: Any) -> str | None:
    if key.endswith("_env"):
        return env_name_problem(value)
    if looks_like_secret_key(key):
        return (
            "a secret does not belong in YAML: set it in the environment or the secrets"
            f" file and name its variable with {key}_env"
        )
    if key == "timeout":
        return _timeout_problem(value)
    if key == "daily_budget":
        return _budget_problem(value)
    if key == "daily_limit" and not (isinstance(value, int) and _number(value) and value > 0):
        return "the system's API calls a day (a whole number above 0, e.g. 150000)"
    if key == "search_settle_seconds" and (not _number(value) or value < 0):
        return "seconds, 0 or more (e.g. 5)"
    if key in ("rate_limit", "search_rate_limit"):
        return _rate_problem(value)
    if key == "max_concurrent_requests" and not (
        isinstance(value, int) and _number(value) and value > 0
    ):
        return "calls in flight at once (a whole number above 0, e.g. 10)"
    if key in _URL_KEYS and not (
        isinstance(value, str) and value.startswith(("https://", "http://"))
    ):
        return "an https:// URL"
    if key in _FLAGS and not isinstance(value, bool):
        return "true or false"
    if key == "ca_bundle" and not (isinstance(value, str) and (folder / value).is_file()):
        return f"no such file {value!r} (a PEM file, relative to this file's folder)"
    return None


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timeout_problem(value: object) -> str | None:
    if isinstance(value, list) and len(value) == 2 and all(_number(v) and v > 0 for v in value):
        return None
    return "[connect, read] seconds, two numbers above 0, e.g. [5, 30]"


def _rate_problem(value: object) -> str | None:
    """A pacing rate (``syncd.daemon.pacing``): ``{requests: 190, seconds: 10}``."""
    if (
        isinstance(value, dict)
        and set(value) == {"requests", "seconds"}
        and isinstance(value["requests"], int)
        and _number(value["requests"])
        and value["requests"] > 0
        and _number(value["seconds"])
        and value["seconds"] > 0
    ):
        return None
    return (
        "{requests: N, seconds: S}: at most N calls in any S seconds,"
        " e.g. {requests: 190, seconds: 10}"
    )


def _budget_problem(value: object) -> str | None:
    if _number(value) and isinstance(value, int) and value > 0:
        return None
    text = str(value).strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1])
        except ValueError:
            share = -1
        if 0 < share <= 100:
            return None
    return 'API calls a day (a whole number above 0) or a share of the limit ("50%")'


def read_secrets(path: Path) -> tuple[dict[str, str], ConfigProblem | None]:
    """``KEY=VALUE`` lines of the secrets file (# comments, quotes stripped)."""
    text, problem = read_text(path)
    if text is None:
        return {}, problem
    secrets: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            secrets[key.strip().removeprefix("export ").strip()] = value.strip().strip("'\"")
    return secrets, None


def named_file(
    doc: YamlDocument, key: str, path: Path
) -> tuple[YamlDocument | None, list[ConfigProblem]]:
    """The file syncd.yaml names under ``key``; one that cannot be read is blamed on the key."""
    found, problems = load_yaml(path)
    if found is None and problems and problems[0].line is None:
        return None, [doc.problem([key], f"{path}: {problems[0].message}")]
    return found, problems


def cadence_floor(doc: YamlDocument, settings: Settings) -> list[ConfigProblem]:
    """A cadence below the floor, unless every system is on this machine (the emulators):
    each cycle reads both systems whether anything changed or not, and real APIs count it."""
    if settings.systems and all(on_this_machine(s) for s in settings.systems.values()):
        return []
    return [
        doc.problem(
            ["cadence_seconds", obj],
            f"{seconds} s: {CADENCE_FLOOR} (only systems on this machine, the emulators,"
            " may go faster)",
        )
        for obj, seconds in settings.cadence_seconds.items()
        if seconds < MIN_CADENCE_SECONDS
    ]


LOOPBACK = re.compile(r"(https?://)?(127\.0\.0\.1|localhost|\[::1\])([:/]|$)")


def on_this_machine(system: System) -> bool:
    """The system's address is loopback, or every ``connect_to`` target is (the Salesforce
    emulator keeps its My Domain name and is reached on loopback that way)."""
    options = system.options()
    address = str(options.get("host") or options.get("login_url") or "")
    targets = options.get("connect_to")
    if isinstance(targets, dict) and targets:
        return all(LOOPBACK.match(str(target)) for target in targets.values())
    return LOOPBACK.match(address) is not None


def roles(doc: YamlDocument, settings: Settings) -> list[ConfigProblem]:
    """marketing and crm name two different systems; a system is named after its connector."""
    problems = []
    for role in ("marketing", "crm"):
        name = getattr(settings, role)
        if name not in settings.systems:
            problems.append(
                doc.problem(
                    [role],
                    f"names no system under 'systems'{did_you_mean(name, settings.systems)}",
                )
            )
    if settings.marketing == settings.crm:
        problems.append(doc.problem(["crm"], "the CRM and the marketing system must differ"))
    for name, system in settings.systems.items():
        if system.connector != name:
            problems.append(
                doc.problem(
                    ["systems", name, "connector"],
                    f"connector {system.connector!r} under systems.{name}: a system is named"
                    " after its connector",
                )
            )
    return problems


def objects(doc: YamlDocument, what: str) -> tuple[dict[str, Any], list[ConfigProblem]]:
    """The top of fields.yaml or stages.yaml: a mapping of objects, at least people."""
    if not isinstance(doc.root, dict):
        return {}, [
            doc.problem([], f"a mapping of objects (company, person, deal) to their {what}")
        ]
    if not doc.root:
        return {}, [doc.problem([], f"no objects: the file is empty; people need their {what}")]
    return doc.root, []
