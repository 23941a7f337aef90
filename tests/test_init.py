"""``syncd init``: a commented configuration for real systems that validates as written."""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import tomllib
from pathlib import Path

from ruamel.yaml import YAML
from typer.testing import CliRunner

from syncd.cli.app import app
from syncd.config import init as init_config
from tests.factories import syncd_cli

ROOT = Path(__file__).resolve().parents[1]
CREDENTIALS = ("HUBSPOT_ACCESS_TOKEN", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET")


_syncd = syncd_cli


def _secrets(path: Path) -> dict[str, str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    pairs = [line.partition("=") for line in lines if line and not line.startswith("#")]
    return {key: value for key, _, value in pairs}


def test_init_writes_a_configuration_that_validates_offline_as_written(tmp_path: Path) -> None:
    target = tmp_path / "etc-syncd"
    result = CliRunner().invoke(app, ["init", str(target)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for path in init_config.targets(target):
        assert path.is_file(), path
    said = " ".join(result.output.split())
    for step in ("Fill in the credentials", "syncd_salesforce_id", "syncd validate --config"):
        assert step in said
    assert f"syncd once --dry-run --config {target / 'syncd.yaml'}" in said
    assert "syncd.service" in said
    settings = YAML(typ="safe").load((target / "syncd.yaml").read_text(encoding="utf-8"))
    assert settings["systems"]["salesforce"]["login_url"] == "https://YOUR-DOMAIN.my.salesforce.com"
    assert settings["systems"]["hubspot"]["host"] == "https://api.hubapi.com"
    # environment without the credentials: offline validation needs none
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    checked = _syncd("validate", "--offline", "--config", str(target / "syncd.yaml"), env=env)
    assert checked.returncode == 0, checked.stderr
    assert "configuration valid" in checked.stdout


def test_the_secrets_file_is_private_and_names_every_credential_without_a_value(
    tmp_path: Path,
) -> None:
    assert CliRunner().invoke(app, ["init", str(tmp_path)]).exit_code == 0
    secrets = tmp_path / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    named = _secrets(secrets)
    assert named and set(named.values()) == {""}
    # the variables the configuration reads and finds unset are exactly those the file names
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIALS}
    answer = _syncd("validate", "--config", str(tmp_path / "syncd.yaml"), env=env)
    assert answer.returncode == 2
    unset = set(re.findall(r"credential not set: (\w+)", answer.stderr))
    assert unset == set(named), answer.stderr
    # filled in, the same configuration still validates offline, secrets read from the file
    secrets.write_text("".join(f"{key}=fake-{key.lower()}\n" for key in named), encoding="utf-8")
    offline = _syncd("validate", "--offline", "--config", str(tmp_path / "syncd.yaml"), env=env)
    assert offline.returncode == 0, offline.stderr


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    mine = tmp_path / "syncd.yaml"
    mine.write_text("# mine\n", encoding="utf-8")
    refused = CliRunner().invoke(app, ["init", str(tmp_path)])
    assert refused.exit_code == 1
    assert "--force" in refused.output and "syncd.yaml" in refused.output
    assert mine.read_text(encoding="utf-8") == "# mine\n"
    assert not (tmp_path / "stages.yaml").exists()  # nothing written at all
    forced = CliRunner().invoke(app, ["init", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert mine.read_text(encoding="utf-8") == init_config.template("syncd.yaml")


def test_the_templates_are_package_data_and_name_the_schemas_init_writes(tmp_path: Path) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = project["tool"]["setuptools"]["package-data"]["syncd"]
    shipped = sorted(
        p.name for p in (ROOT / "syncd" / "config" / "templates").iterdir() if p.is_file()
    )
    assert sorted(init_config.TEMPLATES) == shipped
    for name in shipped:
        assert any(fnmatch.fnmatch(f"config/templates/{name}", p) for p in patterns), name
        assert init_config.template(name)  # read through importlib.resources
    init_config.write(tmp_path)
    for name in ("syncd.yaml", "stages.yaml", "fields.yaml"):
        first = init_config.template(name).splitlines()[0]
        found = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert found, first
        assert (tmp_path / found[1]).is_file()


def test_the_templates_hold_the_shipped_vocabulary_and_fields() -> None:
    """stages.yaml and fields.yaml of syncd init are config/'s, with other comments."""
    for name in ("stages.yaml", "fields.yaml"):
        template = YAML(typ="safe").load(init_config.template(name))
        shipped = YAML(typ="safe").load((ROOT / "config" / name).read_text(encoding="utf-8"))
        assert template == shipped, f"syncd/config/templates/{name} differs from config/{name}"


def test_the_syncd_yaml_template_holds_the_shipped_settings() -> None:
    """syncd init's syncd.yaml and config/'s set the same (the demo and the benchmark read
    the template: an install that is not a checkout has no config/), bar where each
    points: the systems' addresses and options, and the secrets file."""
    template = YAML(typ="safe").load(init_config.template("syncd.yaml"))
    shipped = YAML(typ="safe").load((ROOT / "config" / "syncd.yaml").read_text(encoding="utf-8"))
    for settings in (template, shipped):
        for key in ("systems", "secrets_file"):
            settings.pop(key, None)
    assert template == shipped
    assert template["sla"]["crm_task"]["enabled"] is False  # off as shipped, named
