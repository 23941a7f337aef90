"""The help a user reads: every command shows an example of itself; shell completion works."""

from __future__ import annotations

from typing import Any

import typer.main
from typer.testing import CliRunner

from syncd.cli.app import app


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``group``, hidden ones too, as argument paths."""
    found = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if hasattr(command, "commands"):  # a group: `syncd errors dismiss`
            found += _commands(command, (*path, name))
    return found


def test_every_command_shows_an_example_of_itself() -> None:
    commands = _commands(typer.main.get_command(app))
    assert {("once",), ("errors",), ("errors", "dismiss"), ("explain",)} <= set(commands)
    missing = []
    for path in commands:
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, shown.output
        if "Example:" not in shown.output or f"$ syncd {' '.join(path)}" not in shown.output:
            missing.append(" ".join(path))
    assert not missing, f"help without an 'Example:' running the command itself: {missing}"


def test_the_shell_completion_script_is_shown_and_completes_commands() -> None:
    script = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="syncd")
    assert script.exit_code == 0, script.output
    assert "_SYNCD_COMPLETE=complete_bash" in script.output
    completed = CliRunner().invoke(
        app,
        [],
        prog_name="syncd",
        env={"_SYNCD_COMPLETE": "complete_bash", "COMP_WORDS": "syncd expl", "COMP_CWORD": "1"},
    )
    assert completed.output.split() == ["explain"], completed.output


def test_every_command_is_listed_in_one_sentence_without_module_names() -> None:
    """The command list shows each command's first paragraph as written, line breaks and
    all: it is one line, and speaks of what the user does, not of syncd's modules."""
    long = []
    for path in _commands(typer.main.get_command(app)):
        command: Any = typer.main.get_command(app)
        for name in path:
            command = command.commands[name]
        first = (command.help or "").strip().split("\n\n")[0]
        if "\n" in first or len(first) > 100 or "syncd." in first.replace("syncd.yaml", ""):
            long.append(f"{' '.join(path)}: {first!r}")
    assert not long, long
