"""Reading configs: YAML files, key=value overrides, and the original pipeline's flat configs (mapped onto the schema
before validation, so the schema never needs to know about them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from personaforge.config.original import is_legacy_config, map_legacy_config
from personaforge.config.schema import DataConfig, TrainConfig, validate_config
from personaforge.errors import PersonaForgeError
from personaforge.redaction import redact_override
from personaforge.yamlio import YamlDoc, load_yaml


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.epochs=2' → (['train', 'epochs'], 2). Values are YAML scalars."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise PersonaForgeError(f"override '{text}': expected key=value, e.g. train.epochs=2")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    data = dict(data or {})
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
            node[part] = child = dict(child)
            node = child
        node[path[-1]] = value
    return data


def override_eval_settings(cfg: TrainConfig, overrides: list[str]) -> TrainConfig:
    """A run's config with eval.* settings changed (persona eval KEY=VALUE); other sections are the run's own."""
    for text in overrides:
        path, _ = parse_override(text)
        if len(path) != 2 or path[0] != "eval":
            raise PersonaForgeError(f"override '{text}': persona eval changes eval.* settings only,"
                                    " e.g. eval.repetition_penalty=1.2")
    data = apply_overrides(cfg.model_dump(mode="json"), overrides)
    return validate_config(TrainConfig, data, label="eval override")


class OverriddenDoc(YamlDoc):
    """Errors about a key that a key=value override set name the override, not the file line it replaced."""

    def __init__(self, doc: YamlDoc | None, label: str, overrides: list[str]) -> None:
        super().__init__(data=doc.data if doc else None, source=doc.source if doc else label,
                         lines=doc.lines if doc else {})
        self.overrides = [(tuple(parse_override(text)[0]), text) for text in overrides]

    def where(self, path: tuple = ()) -> str:
        path = tuple(str(p) for p in path)
        for keys, text in reversed(self.overrides):  # the last override of a key wins, so it is the one to blame
            common = min(len(keys), len(path))
            if common and keys[:common] == path[:common]:
                return f"override '{redact_override(text)}'"
        return super().where(path)


def load_data_config(path: Path | None, overrides: list[str] | None = None) -> tuple[DataConfig, YamlDoc | None]:
    doc = load_yaml(path) if path is not None else None
    data = doc.data if doc else {}
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [])
    where = OverriddenDoc(doc, "data config", overrides) if overrides else doc
    config = validate_config(DataConfig, data, where, label="data config")
    return config, doc


def load_train_config(path: Path, overrides: list[str] | None = None) -> tuple[TrainConfig, list[str]]:
    """Load a training config; a flat config written for the original pipeline is mapped (notes returned)."""
    doc = load_yaml(path)
    data = doc.data
    notes: list[str] = []
    if isinstance(data, dict) and is_legacy_config(data):
        data, notes = map_legacy_config(data, doc)
        doc = None  # mapped keys no longer have lines of their own
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [])
    where = OverriddenDoc(doc, str(path), overrides) if overrides else doc
    return validate_config(TrainConfig, data, where, label=str(path)), notes
