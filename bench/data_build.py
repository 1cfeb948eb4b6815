"""Data-build speed: seconds per MB of transcript, on ~1 MB made from the bundled samples.

Each copy of a bundled transcript gets its turns' sentences shuffled with its own seed, so the text is
not one file repeated verbatim. The copies still share sentences, so the leakage limit is lifted for
the run (the check itself still runs in full). The build embeds questions and passages with
all-MiniLM-L6-v2 (retrieval and the fit threshold); the row says how many texts went through the model,
and the load average before the run, since other processes on a 2-core machine slow the model down.
Run: `make bench` or `.venv/bin/python bench/data_build.py`.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import socket
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from personaforge.config import load_data_config  # noqa: E402
from personaforge.dataset.build import build_dataset  # noqa: E402
from personaforge.embeddings import default_embedder  # noqa: E402

TARGET_BYTES = 1_000_000
TARGET_SECONDS_PER_MB = 60.0  # issue 16: a 1 MB build, retrieval included, stays under a minute
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def shuffled_copy(text: str, rng: random.Random) -> str:
    lines = []
    for line in text.splitlines():
        label, tab, body = line.partition("\t")
        if tab and len(body.split()) > 12:
            parts = SENTENCE.split(body)
            rng.shuffle(parts)
            line = f"{label}\t{' '.join(parts)}"
        elif not tab and len(line.split()) > 12:
            parts = SENTENCE.split(line)
            rng.shuffle(parts)
            line = " ".join(parts)
        lines.append(line)
    return "\n".join(lines) + "\n"


def make_corpus(folder: Path) -> int:
    sources = sorted((REPO / "samples" / "transcripts").glob("*.txt"))
    total, copy = 0, 0
    while total < TARGET_BYTES:
        for source in sources:
            text = shuffled_copy(source.read_text(encoding="utf-8"), random.Random(copy))
            target = folder / f"{source.stem}-{copy:03d}.txt"
            target.write_text(text, encoding="utf-8")
            total += target.stat().st_size
        copy += 1
    return total


def measure() -> dict:
    """Build ~1 MB of transcripts once and return the timing row (bench/run_all.py reuses it)."""
    work = Path(tempfile.mkdtemp(prefix="pf-bench-"))
    try:
        corpus = work / "transcripts"
        corpus.mkdir()
        size = make_corpus(corpus)
        config, _ = load_data_config(REPO / "configs/data/default.yaml")
        config = config.model_copy(update={
            "transcripts": [str(corpus)], "personas": [str(REPO / "samples/personas")],
            "out": str(work / "out"), "max_leak_ngram": 10**6})
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        encoded = default_embedder().encoded_count
        start = time.perf_counter()
        result = build_dataset(config)
        seconds = time.perf_counter() - start
        encoded = default_embedder().encoded_count - encoded
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mb = size / 1e6
    return {
        "benchmark": "data_build",
        "date": date.today().isoformat(),
        "host": socket.gethostname(),
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "transcript_mb": round(mb, 3),
        "records": len(result.train) + len(result.eval),
        "embedded_texts": encoded,
        "load_average_before": round(load, 2) if load is not None else None,
        "seconds": round(seconds, 2),
        "seconds_per_mb": round(seconds / mb, 2),
        "target_seconds_per_mb": TARGET_SECONDS_PER_MB,
        "target_met": seconds / mb < TARGET_SECONDS_PER_MB,
    }


def table(row: dict) -> str:
    return "\n".join([
        f"| transcript MB | records | texts embedded | load before | seconds | s per MB |"
        f" target (< {row['target_seconds_per_mb']:.0f} s/MB) |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {row['transcript_mb']:.2f} | {row['records']} | {row.get('embedded_texts', '—')} |"
        f" {row.get('load_average_before', '—')} | {row['seconds']:.2f} | {row['seconds_per_mb']:.2f} | "
        f"{'met' if row['target_met'] else 'MISSED'} |"])


def main() -> None:
    row = measure()
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{row['date']}-{row['host']}-data_build.json").write_text(json.dumps(row, indent=2) + "\n")
    print(table(row))


if __name__ == "__main__":
    main()
