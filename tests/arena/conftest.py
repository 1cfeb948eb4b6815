"""A runs folder as persona eval leaves it: two runs (one with its untuned baseline) answering the same eval set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

QUESTIONS = [("q1", "Ada Bell", "What do you do in fog?", "I count the flashes."),
             ("q2", "Ada Bell", "And storms?", "They come sideways."),
             ("q3", "Ben Ortiz", "When do you start?", "At three, <b>before</b> the street wakes."),
             ("q4", "Ben Ortiz", "Who taught you?", "My grandmother.")]
RUNS = {"run-good/eval/eval": "good", "run-bad/eval/eval": "bad", "run-good/eval/eval-baseline": "base"}


def write_runs(root: Path, fingerprint: str = "fp1") -> Path:
    for key, tag in RUNS.items():
        folder = root / key
        folder.mkdir(parents=True)
        run = key.split("/")[0]
        split = "eval"
        (folder / "metrics.json").write_text(json.dumps(
            {"rouge1": 0.3, "meta": {"run": run, "split": split, "eval_fingerprint": fingerprint,
                                     "baseline": key.endswith("baseline")}}), encoding="utf-8")
        rows = [{"id": qid, "persona": persona, "question": q, "expected": ref,
                 "prediction": f"{tag} answer to {qid}"} for qid, persona, q, ref in QUESTIONS]
        (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (root / "latest").symlink_to(root / "run-good")
    return root


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    return write_runs(tmp_path / "runs")
