"""A configuration, loaded whole: its files (``syncd.config.settings``) and the checks
that only the registry can make, of the connectors it knows by name; every problem of
both is reported at once."""

from __future__ import annotations

from pathlib import Path

from syncd import registry
from syncd.config.settings import Config, read_config


def load_config(path: str | Path) -> Config:
    """Load and validate syncd.yaml, the files it names and its connectors' sections;
    raise one ``ConfigError`` with every problem found."""
    return read_config(path, registry.CHECKS)
