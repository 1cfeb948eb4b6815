"""What a search of the person's own words reaches, next to a finished run's fine-tune and baseline.

For a run evaluated before `retrieval_level` was part of metrics.json: reads the run's eval predictions (fine-tuned
and baseline) and its training data, and scores the same persona's real training answer that best fits each
question against the reference, as `persona eval` now does. No model is run.

    .venv/bin/python bench/retrieval_level.py outputs/demo/runs/latest [more runs...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from personaforge.evaluate.metrics import retrieval_level


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | samples | semantic similarity: fine-tuned / baseline / own words searched |"
          " ROUGE-1: fine-tuned / baseline / own words searched |")
    print("|---|---|---|---|")
    for run in args.runs:
        recorded = json.loads((run / "data.json").read_text())
        data = Path(recorded["path"])
        for name, digest in recorded.get("files", {}).items():
            if Path(name).name == "train.jsonl" and \
                    hashlib.sha256((data / "train.jsonl").read_bytes()).hexdigest() != digest:
                sys.exit(f"{data / 'train.jsonl'} changed since {run} trained on it; rebuild it first")
        train = [r for r in read_jsonl(data / "train.jsonl") if r.get("type") == "extracted"]
        tuned = read_jsonl(run / "eval" / "eval" / "predictions.jsonl")
        base = {r["id"]: r for r in read_jsonl(run / "eval" / "eval-baseline" / "predictions.jsonl")}
        level = retrieval_level([r["question"] for r in tuned], [r["expected"] for r in tuned],
                                [r["persona"] for r in tuned], [(r["persona"], r["completion"]) for r in train])

        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        cells = []
        for metric in ("semantic_similarity", "rouge1"):
            cells.append(f"{mean([r['scores'][metric] for r in tuned]):.3f} / "
                         f"{mean([base[r['id']]['scores'][metric] for r in tuned]):.3f} / {mean(level[metric]):.3f}")
        print(f"| {run} | {len(tuned)} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
