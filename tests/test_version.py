"""The version: one number, in pyproject.toml, printed by ``syncd --version`` and
``python -m syncd --version``, and the newest entry of CHANGELOG.md."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from typer.testing import CliRunner

import syncd
from syncd.cli.app import app

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["version"])


def test_syncd_version_prints_the_installed_version() -> None:
    answer = CliRunner().invoke(app, ["--version"])
    assert answer.exit_code == 0
    assert answer.stdout.strip() == f"syncd {syncd.__version__}"
    assert syncd.__version__ == _declared()


def test_python_m_syncd_is_the_syncd_command() -> None:
    answer = subprocess.run(
        [sys.executable, "-m", "syncd", "--version"], capture_output=True, text=True, check=False
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == f"syncd {_declared()}"


def test_the_changelog_names_the_version_first() -> None:
    headings = [
        line
        for line in (ROOT / "CHANGELOG.md").read_text("utf-8").splitlines()
        if line.startswith("## ")
    ]
    assert headings and headings[0].startswith(f"## {_declared()} ")
