"""Tables for `persona data stats` and `persona data speakers`."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from personaforge.dataset.card import counts_table, lengths
from personaforge.dataset.validate import read_records
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.personas import Roster
from personaforge.transcripts import SPEECH, Transcript


def dataset_stats(folder: Path) -> dict:
    if not folder.is_dir():
        raise PersonaForgeError(f"{display_path(folder)}: not a dataset folder (expected train.jsonl and eval.jsonl)")
    result = {}
    for split in ("train", "eval"):
        path = folder / f"{split}.jsonl"
        if not path.exists():
            raise PersonaForgeError(f"{display_path(path)}: not found; build the dataset first (persona data build)")
        rows, _ = read_records(path)
        for row in rows:
            row.setdefault("persona", "(unknown)")
            row.setdefault("type", "extracted")
            if "prompt" not in row:  # a messages-only file
                row["prompt"] = "\n".join(m.get("content", "") for m in row["messages"][:-1])
                row["completion"] = row["messages"][-1].get("content", "")
        result[split] = {"records": len(rows), "counts": counts_table(rows), "lengths": lengths(rows)}
    return result


def speaker_table(transcripts: list[Transcript], roster: Roster | None) -> list[dict]:
    table: dict[str, dict] = defaultdict(lambda: {"turns": 0, "words": 0, "files": set()})
    display: dict[str, str] = {}
    for transcript in transcripts:
        for turn in transcript.turns:
            if turn.kind != SPEECH:
                continue
            key = " ".join(turn.speaker.split()).casefold()
            display.setdefault(key, " ".join(turn.speaker.split()))
            row = table[key]
            row["turns"] += 1
            row["words"] += turn.words
            row["files"].add(transcript.source)
    rows = []
    for key, row in table.items():
        card = roster.card_for(key) if roster else None
        rows.append({"label": display[key], "turns": row["turns"], "words": row["words"],
                     "files": sorted(row["files"]), "card": card.name if card else None,
                     "role": card.role if card else None})
    rows.sort(key=lambda r: (-r["words"], r["label"]))
    return rows
