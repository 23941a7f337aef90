"""Import boundaries: vendor SDKs stay in connectors/, syncd/ reaches connectors only
through registry.py, and connectors do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ("simple_salesforce", "hubspot", "requests", "urllib3")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def test_syncd_imports_no_vendor_sdk_and_no_connector_outside_the_registry() -> None:
    offenders = []
    for path in (ROOT / "syncd").rglob("*.py"):
        for name in _imports(path):
            if _top(name) in VENDOR:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
            if _top(name) == "connectors" and path.name != "registry.py":
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_connectors_do_not_import_each_other() -> None:
    offenders = []
    for system in ("hubspot", "salesforce"):
        other = "salesforce" if system == "hubspot" else "hubspot"
        for path in (ROOT / "connectors" / system).rglob("*.py"):
            for name in _imports(path):
                if (
                    name.startswith(f"connectors.{other}")
                    or (system == "salesforce" and _top(name) == "hubspot")
                    or (system == "hubspot" and _top(name) == "simple_salesforce")
                ):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_the_check_sees_imports() -> None:
    """The walker itself works: registry.py is known to import the connectors."""
    assert any(_top(n) == "connectors" for n in _imports(ROOT / "syncd" / "registry.py"))
