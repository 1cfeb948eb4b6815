"""Tables for `persona data stats` and `persona data speakers`."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from personaforge.dataset.card import counts_table, lengths
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.personas import Roster
from personaforge.transcripts import SPEECH, Transcript


def read_records(path: Path) -> list[dict]:
    rows = []
    source = display_path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise PersonaForgeError(f"{source}: not found; build the dataset first (persona data build)") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PersonaForgeError(f"{source}:{number}: invalid JSON ({exc.msg}); run persona data validate") from None
        if not isinstance(row, dict) or "completion" not in row or "prompt" not in row:
            raise PersonaForgeError(f"{source}:{number}: not a personaforge record; run persona data validate")
        row.setdefault("persona", "(unknown)")
        row.setdefault("type", "extracted")
        rows.append(row)
    return rows


def dataset_stats(folder: Path) -> dict:
    if not folder.is_dir():
        raise PersonaForgeError(f"{display_path(folder)}: not a dataset folder (expected train.jsonl and eval.jsonl)")
    result = {}
    for split in ("train", "eval"):
        rows = read_records(folder / f"{split}.jsonl")
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
