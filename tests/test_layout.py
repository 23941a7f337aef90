"""The package's shape: no module imports, however indirectly, a module that imports it.

Every import counts: at the top, inside a function, and under ``TYPE_CHECKING``. A cycle
is broken with a protocol of what the importer needs (``syncd.sync.closed_loop.Looping``,
``syncd.config.checks.Settings``, the emulators' ``control.Controlled``), not hidden.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("syncd", "connectors")


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages under ``root``."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """The dotted names an import statement reaches, relative ones resolved."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parts = module.split(".") if is_package else module.split(".")[:-1]
            parts = parts[: len(parts) - node.level + 1]
            base = ".".join([*parts, *([node.module] if node.module else [])])
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports (submodule imports included)."""
    found = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in found}
    for name, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py"):
                while target and target not in found:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph(ROOT)) == []


def test_the_finder_sees_a_cycle_through_type_checking_and_a_function(tmp_path: Path) -> None:
    """The check above can fail: a cycle made of a TYPE_CHECKING import and an import
    inside a function is found, and a plain chain is not a cycle."""
    package = tmp_path / "syncd"
    (package / "sub").mkdir(parents=True)
    (tmp_path / "connectors").mkdir()
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from syncd.sub import b\n"
    )
    (package / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (package / "c.py").write_text("from syncd import a\n")
    assert cycles(import_graph(tmp_path)) == [["syncd.a", "syncd.sub.b"]]


def test_the_top_level_holds_the_subpackages_and_shared_foundations_only() -> None:
    """The architecture shows in the tree: the command line, the daemon, the sync core,
    the configuration, the store, the report and the emulator harness are subpackages;
    each connector's emulator is a package beside its connector."""
    top = {p.name for p in (ROOT / "syncd").iterdir() if not p.name.startswith("__")}
    subpackages = {"cli", "daemon", "sync", "config", "state", "report", "harness"}
    assert subpackages <= {name for name in top if (ROOT / "syncd" / name / "__init__.py").exists()}
    assert {name for name in top if name.endswith(".py")} == {
        "abc.py",
        "errors.py",
        "logs.py",
        "model.py",
        "preflight.py",
        "registry.py",
        "retry.py",
    }
    for system in ("hubspot", "salesforce"):
        folder = ROOT / "connectors" / system
        assert (folder / "emulator" / "__main__.py").is_file()
        assert not list(folder.glob("emulator*.py")), "emulator modules outside emulator/"
