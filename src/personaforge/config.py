"""Configs: pydantic models (unknown keys are errors with a did-you-mean), YAML loading, key=value overrides."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from personaforge.errors import PersonaForgeError
from personaforge.yamlio import YamlDoc, load_yaml


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------- data
RecordType = Literal["extracted", "transformed", "hypothetical", "contrastive", "negative"]
RECORD_TYPES: tuple[str, ...] = typing.get_args(RecordType)

DEFAULT_CONTRASTIVE_QUESTIONS = [
    "What does patience mean in your work?",
    "What was the hardest year you have had, and what did it teach you?",
    "What would you tell a twenty-year-old who wants to do what you do?",
    "How do you know when something you are doing is working?",
    "What do people misunderstand most about your work?",
    "What does an ordinary morning look like for you?",
    "What are you afraid of losing?",
    "Who taught you the most, and what did they teach you?",
    "How do you think about money and your work?",
    "What makes you hopeful?",
    "What mistake taught you the most?",
    "Why do you keep doing this?",
]


class TeacherConfig(Section):
    url: str = Field(description="Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1")
    model: str
    api_key_env: str = "PERSONAFORGE_TEACHER_API_KEY"
    timeout: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    temperature: float = Field(0.0, ge=0)
    cache_dir: str | None = None


class DataConfig(Section):
    transcripts: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)
    format: Literal["auto", "tab", "otter", "srt", "vtt", "json", "jsonl"] = "auto"
    out: str = "data/default"
    seed: int = 0
    eval_fraction: float = Field(0.12, ge=0, lt=1)
    eval_types: list[RecordType] = Field(default_factory=lambda: ["extracted"])
    context_turns: int = Field(1, ge=0, le=8)
    context_max_words: int = Field(80, ge=10)
    chunk_min_words: int = Field(40, ge=5)
    chunk_max_words: int = Field(120, ge=10)
    min_answer_words: int = Field(4, ge=1)
    transformed: bool = True
    hypothetical_per_topic: int = Field(2, ge=0)
    contrastive_questions: list[str] = Field(default_factory=lambda: list(DEFAULT_CONTRASTIVE_QUESTIONS))
    negatives_per_pair: int = Field(2, ge=0)
    max_leak_ngram: int = Field(8, ge=1)
    redact_others: bool = False
    teacher: TeacherConfig | None = None

    @field_validator("transcripts", "personas", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_chunks(self) -> "DataConfig":
        if self.chunk_min_words >= self.chunk_max_words:
            raise ValueError("chunk_min_words must be smaller than chunk_max_words")
        return self


# --------------------------------------------------------------------------------------- machinery
def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _model_at(cls: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        cls = _submodel(field.annotation)
    return cls


def _all_keys(cls: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys = []
    for name, field in cls.model_fields.items():
        keys.append(prefix + (name,))
        sub = _submodel(field.annotation)
        if sub is not None:
            keys.extend(_all_keys(sub, prefix + (name,)))
    return keys


def unknown_key_hint(cls: type[BaseModel], section: tuple[str, ...], key: str) -> str:
    """'did you mean ...' for a key unknown in ``section``: the closest key there, or the section it belongs to."""
    everywhere = _all_keys(cls)
    elsewhere = [k for k in everywhere if k[-1] == key and k[:-1] != section]
    if elsewhere:
        target = ".".join(elsewhere[0])
        where = ".".join(elsewhere[0][:-1]) or "the top level"
        return f"'{key}' belongs in section '{where}' ({target})"
    here = _model_at(cls, section)
    names = list(here.model_fields) if here else []
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{'.'.join(section + (close[0],))}'?"
    close = difflib.get_close_matches(key, [k[-1] for k in everywhere], n=1, cutoff=0.6)
    if close:
        full = next(k for k in everywhere if k[-1] == close[0])
        return f"did you mean '{'.'.join(full)}'?"
    return f"known keys here: {', '.join(names)}" if names else "remove it"


def validate_config(cls: type[BaseModel], data: Any, doc: YamlDoc | None = None, label: str = "config") -> Any:
    """Build ``cls`` from ``data``; the first problem becomes a one-line PersonaForgeError naming file:line and key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = doc.where() if doc else label
        raise PersonaForgeError(f"{where}: expected a mapping of keys (key: value), got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(p) for p in error["loc"])
        where = doc.where(loc) if doc else label
        key = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            hint = unknown_key_hint(cls, tuple(p for p in loc[:-1] if not p.isdigit()), loc[-1])
            raise PersonaForgeError(f"{where}: unknown key '{key}'; {hint}") from None
        if error["type"] == "missing":
            raise PersonaForgeError(f"{where}: missing required key '{key}'; add it") from None
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 60 else ""
        raise PersonaForgeError(f"{where}: key '{key}': {message}{shown}") from None


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


def load_data_config(path: Path | None, overrides: list[str] | None = None) -> tuple[DataConfig, YamlDoc | None]:
    doc = load_yaml(path) if path is not None else None
    data = doc.data if doc else {}
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [])
    config = validate_config(DataConfig, data, doc, label="data config")
    return config, doc
