"""The personas a run was trained on: names, aliases, system prompts, consent and source.

Training writes them into the run (`personas.json`) so chat, export, serve and push keep working after the
dataset is rebuilt or moved. Runs made before that file existed fall back to the dataset's card and records.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.personas import normalize_label, slugify

PERSONAS_FILE = "personas.json"


@dataclass(frozen=True)
class RunPersona:
    name: str
    system_prompt: str
    aliases: tuple[str, ...] = ()
    consent: str | None = None
    source: str | None = None

    @property
    def slug(self) -> str:
        return slugify(self.name)

    def to_json(self) -> dict:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data

    @classmethod
    def from_json(cls, data: dict) -> RunPersona:
        return cls(name=str(data["name"]), system_prompt=str(data.get("system_prompt") or ""),
                   aliases=tuple(str(a) for a in data.get("aliases") or ()), consent=data.get("consent"),
                   source=data.get("source"))


def personas_from_dataset(names: list[str], records: list[dict], card_file: Path | None) -> list[RunPersona]:
    """What the dataset says about each trained persona: its card entry and the system prompt its records use."""
    cards: dict[str, dict] = {}
    if card_file is not None and card_file.is_file():
        try:
            for entry in json.loads(card_file.read_text(encoding="utf-8")).get("personas") or []:
                if isinstance(entry, dict) and entry.get("name"):
                    cards[str(entry["name"])] = entry
        except (OSError, ValueError):
            cards = {}
    from personaforge.prompting import record_conversation

    systems: dict[str, str] = {}
    for record in records:
        # Built records carry messages; the original pipeline's carry the system prompt in their plain prompt.
        conversation = record_conversation(record)
        if conversation is not None:
            systems.setdefault(conversation.name, conversation.system)
    result = []
    for name in names:
        card = cards.get(name, {})
        system = systems.get(name) or str(card.get("system_prompt") or "")
        result.append(RunPersona(name=name, system_prompt=system,
                                 aliases=tuple(str(a) for a in card.get("aliases") or ()),
                                 consent=card.get("consent"), source=card.get("source")))
    return result


def write_run_personas(run_path: Path, personas: list[RunPersona]) -> None:
    from personaforge.fileio import atomic_write_text, dumps_json

    atomic_write_text(run_path / PERSONAS_FILE, dumps_json({"personas": [p.to_json() for p in personas]}))


def run_personas(run) -> list[RunPersona]:
    """The run's personas, from personas.json or (older runs) from the dataset it was trained on."""
    recorded = run.path / PERSONAS_FILE
    if recorded.is_file():
        data = json.loads(recorded.read_text(encoding="utf-8"))
        return [RunPersona.from_json(entry) for entry in data.get("personas") or []]
    from personaforge.train.data import load_dataset_dir

    cfg = run.train_config()
    names = list(run.read_json("data.json").get("personas") or [])
    dataset = load_dataset_dir(cfg.data)
    names = names or dataset.personas
    data_path = Path(cfg.data.path)
    card = data_path / "dataset_card.json" if data_path.is_dir() else None
    return personas_from_dataset(names, dataset.train + dataset.eval, card)


def find_persona(personas: list[RunPersona], wanted: str) -> RunPersona:
    """A persona by name or alias, case-insensitive; a clear error with the choices otherwise."""
    key = normalize_label(wanted)
    for persona in personas:
        if key in {normalize_label(label) for label in (persona.name, *persona.aliases)}:
            return persona
    names = [p.name for p in personas]
    close = difflib.get_close_matches(wanted, names, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise PersonaForgeError(f"--persona {wanted}: not a persona of this run; {hint}choose one of: {', '.join(names)}")
