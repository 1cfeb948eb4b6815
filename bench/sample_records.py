"""Sample kept synthesized records at random (seeded) and print them for rating, blind to how they were made.

A synthesized record is one whose question (or question and answer) the build wrote: everything whose
generator is not ``transcript``. Each record is printed with a number, the persona, any earlier turns,
the question and the answer, and nothing else: no id, type, generator or fit, so the rater judges only
what the model will learn from. Rate each with three questions: is the question one a real interviewer
would ask this person; does the answer respond to it; is the answer one speaker's own self-contained words.

    .venv/bin/python bench/sample_records.py data/default                 # 60 records, seed 0, for rating
    .venv/bin/python bench/sample_records.py data/default --ids           # number → record id (after rating)
    .venv/bin/python bench/sample_records.py data/default -n 20 --seed 3 --split eval
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import textwrap
from pathlib import Path


def load(folder: Path, splits: list[str]) -> list[dict]:
    rows = []
    for split in splits:
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            sys.exit(f"error: {path}: not found; build the dataset first (persona data build)")
        rows.extend(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return rows


def sample(rows: list[dict], n: int, seed: int) -> list[dict]:
    synthesized = sorted((r for r in rows if r.get("generator") != "transcript"), key=lambda r: r["id"])
    return random.Random(seed).sample(synthesized, min(n, len(synthesized)))


def show(number: int, record: dict, width: int) -> str:
    turns = [m for m in record["messages"] if m["role"] != "system"]
    lines = [f"[{number}] {record['persona']}"]
    for index, message in enumerate(turns):
        earlier = index < len(turns) - 2
        who = ("earlier " if earlier else "") + ("Q" if message["role"] == "user" else "A")
        lines.extend(textwrap.wrap(message["content"], width, initial_indent=f"  {who}: ",
                                   subsequent_indent=" " * (len(who) + 4)))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="a dataset folder (train.jsonl, eval.jsonl)")
    parser.add_argument("-n", type=int, default=60, help="how many records (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--split", choices=["train", "eval", "both"], default="both")
    parser.add_argument("--ids", action="store_true", help="print number → id, type and generator instead")
    parser.add_argument("--width", type=int, default=110)
    args = parser.parse_args()
    splits = ["train", "eval"] if args.split == "both" else [args.split]
    chosen = sample(load(args.dataset, splits), args.n, args.seed)
    for number, record in enumerate(chosen, start=1):
        if args.ids:
            print(f"{number}\t{record['id']}\t{record['type']}\t{record['generator']}")
        else:
            print(show(number, record, args.width))
            print()


if __name__ == "__main__":
    main()
