"""Configuration: the shipped files load; broken ones name file, line and key, all at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syncd.config.load import load_config
from syncd.errors import ConfigError
from syncd.sync.vocabulary import Vocabulary

CONFIG = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(CONFIG / name, tmp_path / name)
    return tmp_path


def test_the_shipped_configuration_loads() -> None:
    config = load_config(CONFIG / "syncd.yaml")
    assert config.syncd.marketing == "hubspot" and config.syncd.crm == "salesforce"
    lead = config.field_map("person", "salesforce", ["Lead", "Contact"])
    assert lead["Lead"]["company"] == "Company" and "company" not in lead["Contact"]
    assert config.stage_fields("person", "hubspot") == ["lifecyclestage", "hs_lead_status"]


def test_a_syntax_error_names_file_and_line(config_dir: Path) -> None:
    path = config_dir / "fields.yaml"
    lines = path.read_text().splitlines()
    lines[5] = "  email: [unclosed"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir / "syncd.yaml")
    (problem,) = caught.value.problems
    assert problem.file.endswith("fields.yaml") and problem.line is not None
    assert problem.line >= 6


def test_every_bad_key_is_reported_with_its_line(config_dir: Path) -> None:
    fields = config_dir / "fields.yaml"
    text = fields.read_text()
    text = text.replace("    conflict: crm_wins\n  title:", "    conflict: sales_wins\n  title:")
    fields.write_text(text)
    stages = config_dir / "stages.yaml"
    stages.write_text(
        stages.read_text().replace("    - name: mql\n", "    - name: mql\n      pardot: {x: y}\n")
    )
    syncd = config_dir / "syncd.yaml"
    syncd.write_text(syncd.read_text().replace("crm: salesforce", "crm: dynamics"))
    with pytest.raises(ConfigError) as caught:
        load_config(syncd)
    found = {(Path(p.file).name, p.key): p for p in caught.value.problems}
    conflict = found[("fields.yaml", "person.company.conflict")]
    assert conflict.line == _line_of(fields, "sales_wins")
    assert "crm_wins" in conflict.message
    pardot = found[("stages.yaml", "person.stages.2.pardot")]
    assert pardot.line == _line_of(stages, "pardot")
    assert pardot.message.startswith("unknown system pardot")
    assert found[("syncd.yaml", "crm")].line == _line_of(syncd, "crm: dynamics")
    assert "syncd.yaml:" in str(caught.value)


def test_a_missing_file_is_named(config_dir: Path) -> None:
    (config_dir / "stages.yaml").unlink()
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir / "syncd.yaml")
    # blamed on the key that names it, with its line
    (problem,) = caught.value.problems
    assert problem.file.endswith("syncd.yaml") and problem.key == "stages" and problem.line
    assert "stages.yaml: cannot read" in problem.message


def _people() -> Vocabulary:
    config = load_config(CONFIG / "syncd.yaml")
    return Vocabulary(config.stages["person"], reading=config.readings["person"])


def test_the_vocabulary_keeps_a_shared_native_value_as_the_current_stage() -> None:
    vocabulary = _people()
    open_status = {"Status": "Open - Not Contacted"}
    assert vocabulary.to_canonical("salesforce", open_status, "subscriber") == "subscriber"
    # read for the first time: as the shipped stages.yaml reads it (`read:`), not the
    # latest stage sharing it; without a reading table, the earliest
    assert vocabulary.to_canonical("salesforce", open_status, None) == "lead"
    plain = Vocabulary(load_config(CONFIG / "syncd.yaml").stages["person"])
    assert plain.to_canonical("salesforce", open_status, None) == "subscriber"
    nurture = {"lifecyclestage": "lead", "hs_lead_status": "BAD_TIMING"}
    assert vocabulary.to_canonical("hubspot", nurture, "lead") == "nurture"
    assert vocabulary.to_canonical("hubspot", {"lifecyclestage": "lead"}, "lead") == "lead"
    # a blank secondary field is a partial match: never a recycle stage, never promoted
    assert vocabulary.to_canonical("hubspot", {"lifecyclestage": "lead", "hs_lead_status": ""}) == (
        "lead"
    )
    assert vocabulary.to_canonical("hubspot", {"lifecyclestage": "salesqualifiedlead"}) == "sal"
    # the lifecycle stage decides where the lead status holds something else
    assert (
        vocabulary.to_canonical(
            "hubspot", {"lifecyclestage": "salesqualifiedlead", "hs_lead_status": "OPEN"}
        )
        == "sal"
    )
    assert vocabulary.allows("sql", "nurture") and vocabulary.allows("nurture", "mql")
    assert not vocabulary.allows("sql", "mql")
    missing = vocabulary.check_picklists("salesforce", {"Status": frozenset({"Qualified"})})
    assert ("mql", "Status", "Marketing Qualified") in missing


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_converted_reads_as_the_stage_the_table_names_among_those_sharing_it() -> None:
    vocabulary = _people()
    converted = {"Status": "Closed - Converted"}  # opportunity, customer and evangelist
    assert vocabulary.to_canonical("salesforce", converted, "mql") == "opportunity"
    assert vocabulary.to_canonical("salesforce", converted, "opportunity") == "opportunity"
    assert vocabulary.to_canonical("salesforce", converted, "customer") == "customer"
    # read for the first time: opportunity (stages.yaml), no longer the latest (evangelist)
    assert vocabulary.to_canonical("salesforce", converted, None) == "opportunity"


def test_deal_stages_move_any_way_and_know_their_outcomes() -> None:
    config = load_config(CONFIG / "syncd.yaml")
    deals = Vocabulary(config.stages["deal"], config.moves["deal"])
    assert config.moves == {"person": "forward", "deal": "any"} and deals.allows(
        "closed_won", "discovery"
    )
    won = deals.stage("closed_won")
    assert won is not None and (won.outcome, won.people) == ("won", "customer")
    said = {("StageName", "Closed Won"): "won", ("StageName", "Closed Lost"): "lost"}
    assert deals.check_outcomes("salesforce", said) == []
    said[("StageName", "Negotiation/Review")] = "lost"
    (problem,) = deals.check_outcomes("salesforce", said)
    assert problem[0] == "negotiation" and "is lost" in problem[1]
    assert config.match_field("company") == "domain" and config.match_field("deal") is None
    assert config.match_field("person") == "email"


def test_new_keys_are_checked_with_their_lines(config_dir: Path) -> None:
    fields = config_dir / "fields.yaml"
    text = fields.read_text()
    text = text.replace(
        '    target: company\n    hubspot: "@companies"\n    salesforce: AccountId',
        '    target: account\n    hubspot: "@companies"\n    salesforce: AccountId',
    )
    text = text.replace(
        "      - {hubspot: RETAIL, salesforce: Retail}", "      - {hubspot: RETAIL}"
    )
    fields.write_text(text)
    stages = config_dir / "stages.yaml"
    text = stages.read_text().replace("moves: any", "moves: sideways")
    stages.write_text(text.replace("people: customer", "people: champion"))
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir / "syncd.yaml")
    found = {(Path(p.file).name, p.key): p for p in caught.value.problems}
    assert found[("fields.yaml", "deal.company.target")].line == _line_of(fields, "target: account")
    retail = found[("fields.yaml", "company.industry.values.6")]
    assert retail.line == _line_of(fields, "{hubspot: RETAIL}") and "salesforce" in retail.message
    assert found[("stages.yaml", "deal.moves")].line == _line_of(stages, "moves: sideways")
    champion = found[("stages.yaml", "deal.stages.5.people")]
    assert champion.line == _line_of(stages, "people: champion")
    assert "no person stage champion" in champion.message


def test_a_fast_cadence_is_refused_unless_both_systems_are_on_this_machine(
    config_dir: Path,
) -> None:
    syncd = config_dir / "syncd.yaml"
    fast = syncd.read_text().replace("  person: 30", "  person: 1")
    syncd.write_text(fast)
    with pytest.raises(ConfigError) as caught:
        load_config(syncd)
    (problem,) = caught.value.problems
    assert problem.key == "cadence_seconds.person" and "API calls" in problem.message
    local = fast.replace("https://api.hubapi.com", "http://127.0.0.1:8080")
    # the Salesforce emulator keeps a My Domain name, reached on loopback by connect_to
    emulated = "https://emu.my.salesforce.com\n" + (
        '    connect_to: {"emu.my.salesforce.com:443": "127.0.0.1:8443"}'
    )
    syncd.write_text(local.replace("https://YOUR-DOMAIN.my.salesforce.com", emulated))
    assert load_config(syncd).syncd.cadence_seconds["person"] == 1


def test_log_level_is_checked_with_its_line_and_read_in_any_case(config_dir: Path) -> None:
    syncd = config_dir / "syncd.yaml"
    original = syncd.read_text()
    syncd.write_text(original + "log_level: loud\n")
    with pytest.raises(ConfigError) as caught:
        load_config(syncd)
    (problem,) = caught.value.problems
    assert (Path(problem.file).name, problem.key) == ("syncd.yaml", "log_level")
    assert problem.line == len(original.splitlines()) + 1
    assert "'loud' is not a log level: one of debug, info, warning, error" in problem.message
    syncd.write_text(original + "log_level: DEBUG\n")
    assert load_config(syncd).syncd.log_level == "debug"
    syncd.write_text(original)
    assert load_config(syncd).syncd.log_level is None
