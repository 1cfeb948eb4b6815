"""YAML loading that remembers where each key came from, so errors can name file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from personaforge.errors import PersonaForgeError
from personaforge.fileio import decode_text, display_path, read_bytes

KeyPath = tuple[str, ...]


@dataclass
class YamlDoc:
    data: Any
    source: str
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the key at ``path``, or of its nearest parent that has one."""
        path = tuple(str(p) for p in path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def where(self, path: KeyPath = ()) -> str:
        line = self.line_of(path)
        return f"{self.source}:{line}" if line else self.source


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _record_lines(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (str(index),)] = item.start_mark.line + 1
            _record_lines(item, path + (str(index),), lines)


def parse_yaml(text: str, source: str) -> YamlDoc:
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PersonaForgeError(f"{source}{line}: invalid YAML ({problem}); fix the syntax") from None
    except RecursionError:
        raise PersonaForgeError(f"{source}: YAML nested too deeply") from None
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return YamlDoc(data=data, source=source, lines=lines)


def load_yaml(path: Path) -> YamlDoc:
    source = display_path(path)
    return parse_yaml(decode_text(read_bytes(path), source, "YAML; give a YAML text file").text, source)
