"""Who can be compared: every evaluated run under a runs folder (fine-tuned or its untuned baseline) and the real
answers (the eval references, the person's own words), grouped by eval set so both sides answer the same question.

A competitor's key is its eval folder relative to the runs folder (``<run>/eval/<name>``), or ``reference``."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, iter_jsonl

REFERENCE = "reference"
REFERENCE_LABEL = "the real answer"
PREDICTIONS = "predictions.jsonl"


@dataclass(frozen=True)
class Question:
    id: str
    persona: str
    text: str


@dataclass
class Competitor:
    key: str
    label: str
    eval_set: str
    answers: dict[str, str] = field(default_factory=dict)  # question id → answer

    @property
    def is_reference(self) -> bool:
        return self.key == REFERENCE


@dataclass
class EvalSet:
    fingerprint: str
    questions: dict[str, Question]
    competitors: dict[str, Competitor]


def _eval_folders(runs_dir: Path):
    """``<run>/eval/<name>/`` folders holding predictions, never through a symlink (``latest``)."""
    for folder, dirnames, _ in os.walk(runs_dir, followlinks=False):
        here = Path(folder)
        dirnames[:] = sorted(d for d in dirnames if not (here / d).is_symlink())
        if here.name == "eval":
            for name in dirnames:
                if (here / name / PREDICTIONS).is_file():
                    yield here / name
            dirnames[:] = []


def _meta(eval_dir: Path) -> dict:
    try:
        data = json.loads((eval_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("meta") or {} if isinstance(data, dict) else {}


class Pool:
    """Every competitor under a runs folder, by eval set; the reference joins each set that has a run."""

    def __init__(self, runs_dir: Path, sets: dict[str, EvalSet]) -> None:
        self.runs_dir = Path(runs_dir)
        self.sets = sets

    @classmethod
    def load(cls, runs_dir: Path) -> Pool:
        runs_dir = Path(runs_dir)
        if not runs_dir.is_dir():
            raise PersonaForgeError(f"runs folder {display_path(runs_dir)} not found; pass --runs DIR (the folder"
                                    " persona train writes runs into)")
        sets: dict[str, EvalSet] = {}
        for eval_dir in _eval_folders(runs_dir):
            meta = _meta(eval_dir)
            source = display_path(eval_dir / PREDICTIONS)
            rows = [row for _, row in iter_jsonl((eval_dir / PREDICTIONS).read_text(encoding="utf-8"), source,
                                                 "re-run persona eval on that run") if isinstance(row, dict)]
            rows = [r for r in rows if isinstance(r.get("id"), str) and isinstance(r.get("prediction"), str)]
            if not rows:
                continue
            ids = sorted(r["id"] for r in rows)
            fingerprint = str(meta.get("eval_fingerprint") or
                              "ids:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16])
            run_dir = eval_dir.parent.parent
            run = str(meta.get("run") or run_dir.name)
            split = str(meta.get("split") or "")
            key = eval_dir.relative_to(runs_dir).as_posix()
            label = run if eval_dir.name == split or (not split and eval_dir.name == "eval") else \
                f"{run} ({eval_dir.name})"
            eval_set = sets.setdefault(fingerprint, EvalSet(fingerprint, {}, {}))
            competitor = Competitor(key, label, fingerprint)
            reference = eval_set.competitors.setdefault(REFERENCE, Competitor(REFERENCE, REFERENCE_LABEL,
                                                                              fingerprint))
            for row in rows:
                qid = row["id"]
                competitor.answers.setdefault(qid, row["prediction"].strip())
                if qid not in eval_set.questions:
                    eval_set.questions[qid] = Question(qid, str(row.get("persona") or ""),
                                                       str(row.get("question") or row.get("prompt") or ""))
                if isinstance(row.get("expected"), str):
                    reference.answers.setdefault(qid, row["expected"].strip())
            eval_set.competitors[key] = competitor
        return cls(runs_dir, sets)

    def competitors(self) -> dict[str, Competitor]:
        """Every competitor by key (the reference once, with its first eval set's answers)."""
        out: dict[str, Competitor] = {}
        for eval_set in self.sets.values():
            for key, competitor in eval_set.competitors.items():
                out.setdefault(key, competitor)
        return out

    def label(self, key: str) -> str:
        competitor = self.competitors().get(key)
        return competitor.label if competitor else key

    def personas(self) -> list[str]:
        return sorted({q.persona for s in self.sets.values() for q in s.questions.values() if q.persona})
