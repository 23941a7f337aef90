"""YAML loading that remembers where every key stands, for errors that name file:line:key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError

from syncd.errors import ConfigProblem

M = TypeVar("M", bound=BaseModel)


class YamlDocument:
    """A parsed YAML file: its plain data and a way to find the line of any path."""

    def __init__(self, path: Path, root: Any) -> None:
        self.path = path
        self.root = root

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node on ``loc`` that exists in the file."""
        node, line = self.root, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def problem(self, loc: Sequence[str | int], message: str) -> ConfigProblem:
        key = ".".join(str(p) for p in loc) or "(top)"
        return ConfigProblem(str(self.path), self.line_of(loc), key, message)


def load_yaml(path: Path) -> tuple[YamlDocument | None, list[ConfigProblem]]:
    """Parse ``path``; on failure return the syntax problem with its line."""
    text, problem = read_text(path)
    if text is None:
        return None, [problem] if problem else []
    try:
        root = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(str(x) for x in (error.context, error.problem) if x)
        return None, [ConfigProblem(str(path), line, "(syntax)", message or str(error))]
    except ReaderError as error:  # a control character: binary content, not YAML
        line = text.count("\n", 0, error.position) + 1
        message = f"character {error.character!r} is not allowed in YAML (binary content?)"
        return None, [ConfigProblem(str(path), line, "(syntax)", message)]
    except YAMLError as error:
        return None, [ConfigProblem(str(path), None, "(syntax)", str(error).splitlines()[0])]
    if root is None:
        root = CommentedMap()
    return YamlDocument(path, root), []


def read_text(path: Path) -> tuple[str | None, ConfigProblem | None]:
    """The UTF-8 text of ``path``, or the problem that it cannot be read or is not UTF-8."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        return None, ConfigProblem(str(path), None, "(file)", f"cannot read: {error.strerror}")
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        byte = raw[error.start : error.start + 1].hex()
        message = f"not UTF-8 text (byte 0x{byte} at offset {error.start}): save it as UTF-8"
        return None, ConfigProblem(str(path), line, "(file)", message)


def plain(node: Any) -> Any:
    """ruamel's round-trip nodes as plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node


def validate(
    doc: YamlDocument, model: type[M], loc: Sequence[str | int] = ()
) -> tuple[M | None, list[ConfigProblem]]:
    """Validate the node at ``loc`` with ``model``; every error located to its line."""
    node: Any = doc.root
    for part in loc:
        node = node[part]
    try:
        return model.model_validate(plain(node)), []
    except ValidationError as error:
        problems = []
        for item in error.errors():
            inner = [p for p in item["loc"] if isinstance(p, str | int)]
            message = str(item["msg"]).removeprefix("Value error, ")
            if item["type"] == "extra_forbidden" and inner:
                known = _keys_at(model, inner[:-1])
                message = f"unknown key {inner[-1]}{did_you_mean(str(inner[-1]), known)}"
                message += f" (known: {', '.join(known)})" if known else ""
            problems.append(doc.problem([*loc, *inner], message))
        return None, problems


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """`` (did you mean X?)`` when ``word`` looks like a misspelling of a known name."""
    close = difflib.get_close_matches(word, [str(k) for k in known], n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys ``model`` knows at ``loc`` (through nested models), or none."""
    for part in loc:
        found = model.model_fields.get(part) if isinstance(part, str) else None
        nested = found.annotation if found is not None else None
        if not (isinstance(nested, type) and issubclass(nested, BaseModel)):
            return []
        model = nested
    return list(model.model_fields)
