"""Getting started: ``syncd init`` (a commented configuration to fill in) and ``syncd schema``
(JSON Schema of the configuration files for editors, and the reference page)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from syncd.cli.common import console, err
from syncd.config import init as init_config
from syncd.config import schema as config_schema


def init(
    directory: Annotated[Path, typer.Argument(help="The folder to write the configuration to.")],
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files that exist already.")
    ] = False,
) -> None:
    """Write a commented configuration for your portal and org to start from.

    syncd.yaml, stages.yaml, fields.yaml, a secrets file (mode 0600) naming the
    credentials to fill in, and the JSON Schema of the three YAML files for editors.
    Refuses to overwrite a file unless --force.

    Example:

    $ syncd init /etc/syncd
    $ syncd validate --offline --config /etc/syncd/syncd.yaml
    """
    existing = init_config.existing(directory)
    if existing and not force:
        err.print(
            f"[red]Not written:[/red] {escape(', '.join(str(p) for p in existing))} exist"
            " already (--force overwrites them)"
        )
        raise typer.Exit(1)
    for path in init_config.write(directory):
        console.print(f"wrote {escape(str(path))}")
    console.print("\nNext steps:")
    for number, step in enumerate(init_config.next_steps(directory), 1):
        console.print(f"  {number}. {escape(step)}")
    console.print(
        "\nEvery key is described in docs/configuration.md (syncd schema --markdown); the"
        f" files name their JSON Schema in {escape(str(directory / init_config.SCHEMA_DIR))}"
        " for editors."
    )


def schema(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write syncd.schema.json, stages.schema.json and fields.schema.json into"
            " this folder (default: print them as one JSON object).",
        ),
    ] = None,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="Print the reference of every key (docs/configuration.md)."
        ),
    ] = False,
) -> None:
    """The JSON Schema of the three YAML files for editors, or the reference of every key.

    Generated from the models that validate syncd.yaml, stages.yaml and fields.yaml.
    Editors complete and check the files with it, given a
    `# yaml-language-server: $schema=...` line at the top of each file, as syncd init
    writes. --markdown prints the reference page of every key instead.

    Example:

    $ syncd schema --out /etc/syncd/schema
    $ syncd schema --markdown > docs/configuration.md
    """
    if markdown:
        sys.stdout.write(config_schema.reference())
    elif out is not None:
        for path in config_schema.write(out):
            console.print(f"wrote {escape(str(path))}")
    else:
        sys.stdout.write(json.dumps(config_schema.schemas(), indent=2) + "\n")
