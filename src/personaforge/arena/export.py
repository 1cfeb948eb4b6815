"""The arena as one JSON document for analysis: the votes as cast, the competitors, the ratings."""

from __future__ import annotations

from pathlib import Path

from personaforge.arena.competitors import Pool
from personaforge.arena.ratings import rate
from personaforge.arena.votes import VOTES_FILE, VoteLog
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path


def export(runs_dir: Path) -> dict:
    runs_dir = Path(runs_dir)
    log = VoteLog(runs_dir / VOTES_FILE)
    if not runs_dir.is_dir():
        raise PersonaForgeError(f"runs folder {display_path(runs_dir)} not found; pass --runs DIR")
    votes = log.votes()
    pool = Pool.load(runs_dir)
    competitors = pool.competitors()
    labels = {key: c.label for key, c in competitors.items()}
    ratings = rate(votes).to_dict()
    for row in ratings["ratings"]:
        row["label"] = labels.get(row["key"], row["key"])
    return {"votes_file": display_path(log.path), "warnings": log.warnings, "votes": votes,
            "competitors": [{"key": k, "label": c.label, "eval_set": c.eval_set, "answers": len(c.answers)}
                            for k, c in sorted(competitors.items())],
            "ratings": ratings}
