"""Persona cards (YAML): who is who in the transcripts, and how each persona is prompted."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from personaforge.config import Section, validate_config
from personaforge.errors import PersonaForgeError
from personaforge.yamlio import YamlDoc, load_yaml

CARD_SUFFIXES = (".yaml", ".yml")


class PersonaCard(Section):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    role: Literal["persona", "interviewer", "other"] = "persona"
    description: str = ""
    speaking_style: str = ""
    topics: list[str] = Field(default_factory=list)
    system_prompt: str | None = None
    markers: list[str] = Field(default_factory=list)
    deflection: str | None = Field(
        None, description="Template for in-character refusals; may use {topic}, {other} and {own_topic}."
    )
    consent: str | None = None
    source: str | None = None

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name must not be empty")
        return " ".join(value.split())

    @field_validator("aliases", "topics", "markers", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @property
    def labels(self) -> list[str]:
        """Every speaker label that means this person (name included), normalised."""
        seen: dict[str, None] = {}
        for label in [self.name, *self.aliases]:
            seen.setdefault(normalize_label(label), None)
        return [label for label in seen if label]

    @property
    def slug(self) -> str:
        return slugify(self.name)

    def prompt_text(self) -> str:
        """The system prompt: given in the card, or built from description and style."""
        if self.system_prompt:
            return " ".join(self.system_prompt.split())
        parts = [f"You are {self.name}."]
        if self.description:
            parts.append(" ".join(self.description.split()))
        if self.speaking_style:
            parts.append("Speak in your own voice: " + " ".join(self.speaking_style.split()))
        return " ".join(parts)


@dataclass(frozen=True)
class LoadedCard:
    card: PersonaCard
    source: str  # file:line of the card


def normalize_label(label: str) -> str:
    return " ".join(label.replace("’", "'").split()).casefold().rstrip(":").strip()


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-") or "persona"


def _cards_in(doc: YamlDoc) -> list[tuple[object, tuple[str, ...]]]:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("personas"), list) and "name" not in data:
        return [(item, ("personas", str(i))) for i, item in enumerate(data["personas"])]
    if isinstance(data, list):
        return [(item, (str(i),)) for i, item in enumerate(data)]
    if isinstance(data, dict):
        return [(data, ())]
    raise PersonaForgeError(f"{doc.source}: a persona card file holds a mapping (one card) or a list of cards")


def _card_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in CARD_SUFFIXES and p.is_file())
            if not found:
                raise PersonaForgeError(f"{path}: no persona cards (*.yaml) in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise PersonaForgeError(f"{path}: no such persona card file or folder; check --personas")
    return files


def load_cards(paths: list[Path]) -> list[LoadedCard]:
    """Load every card; an alias claimed by two people is an error naming both places."""
    if not paths:
        raise PersonaForgeError("no persona cards given; pass --personas FILE_OR_FOLDER (or set personas: in the config)")
    loaded: list[LoadedCard] = []
    for path in _card_files(paths):
        doc = load_yaml(path)
        for item, where in _cards_in(doc):
            if isinstance(item, dict) and "name" not in item:
                raise PersonaForgeError(f"{doc.where(where)}: persona card has no 'name'; add name: <the person's name>")
            card = validate_config(PersonaCard, item, _Scoped(doc, where), label=doc.source)
            loaded.append(LoadedCard(card, doc.where(where)))
    owners: dict[str, LoadedCard] = {}
    for entry in loaded:
        for label in entry.card.labels:
            other = owners.get(label)
            if other is not None and other.card.name != entry.card.name:
                raise PersonaForgeError(
                    f"{entry.source}: alias '{label}' of '{entry.card.name}' is also claimed by '{other.card.name}'"
                    f" ({other.source}); give each alias to one person"
                )
            if other is not None and other.source != entry.source:
                raise PersonaForgeError(
                    f"{entry.source}: '{entry.card.name}' has two cards (also {other.source}); merge them"
                )
            owners[label] = entry
    if not any(entry.card.role == "persona" for entry in loaded):
        raise PersonaForgeError("no card has role 'persona'; at least one person must be a persona to train")
    return loaded


class _Scoped(YamlDoc):
    """A view of a YAML document rooted at one card, so validation errors point at the card's lines."""

    def __init__(self, doc: YamlDoc, prefix: tuple[str, ...]) -> None:
        super().__init__(data=doc.data, source=doc.source, lines=doc.lines)
        self.prefix = prefix

    def line_of(self, path: tuple[str, ...]) -> int | None:
        return super().line_of(self.prefix + tuple(path))


class Roster:
    """Maps speaker labels to cards."""

    def __init__(self, cards: list[LoadedCard]) -> None:
        self.cards = cards
        self._by_label = {label: entry.card for entry in cards for label in entry.card.labels}

    def card_for(self, speaker: str) -> PersonaCard | None:
        return self._by_label.get(normalize_label(speaker))

    @property
    def personas(self) -> list[PersonaCard]:
        return [entry.card for entry in self.cards if entry.card.role == "persona"]

    def persona(self, name: str) -> PersonaCard:
        card = self.card_for(name)
        if card is None or card.role != "persona":
            known = ", ".join(p.name for p in self.personas)
            raise PersonaForgeError(f"unknown persona '{name}'; known personas: {known}")
        return card

    def source_of(self, name: str) -> str:
        return next(entry.source for entry in self.cards if entry.card.name == name)

    @property
    def known_labels(self) -> set[str]:
        return set(self._by_label)
