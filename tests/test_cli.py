"""The command line, as a user runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _syncd(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from syncd.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=120,
        check=False,
    )


def test_validate_names_file_line_and_key_of_a_broken_file(tmp_path: Path) -> None:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    stages = tmp_path / "stages.yaml"
    stages.write_text(stages.read_text().replace("    recycle: true", "    recycle: maybe", 1))
    answer = _syncd("validate", "--offline", "--config", str(tmp_path / "syncd.yaml"))
    assert answer.returncode == 2
    line = next(i for i, text in enumerate(stages.read_text().splitlines(), 1) if "maybe" in text)
    assert f"stages.yaml:{line}" in answer.stderr and "recycle" in answer.stderr


def test_validate_offline_accepts_the_shipped_configuration() -> None:
    answer = _syncd("validate", "--offline", "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["ok"] is True


def test_status_reports_an_empty_store_as_json(tmp_path: Path) -> None:
    for name in ("syncd.yaml", "fields.yaml", "stages.yaml"):
        shutil.copy(ROOT / "config" / name, tmp_path / name)
    answer = _syncd("status", "--json", "--config", str(tmp_path / "syncd.yaml"))
    assert answer.returncode == 0, answer.stderr
    status = json.loads(answer.stdout)
    assert status["counts"]["links"] == 0 and status["schema"] == "0001"
    assert (tmp_path / "syncd.db").exists()
