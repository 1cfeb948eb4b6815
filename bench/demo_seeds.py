"""The demo's verdicts under three seeds: is the fine-tune significantly better than its untuned baseline?

For each seed, builds the bundled dataset with that split seed, runs the demo config with that training seed
(train → merge → eval + baseline), then asks the leaderboard for the paired test of the run against its baseline
on persona attribution, semantic similarity and ROUGE-1. Writes bench/results/<date>-demo-seeds.md.

    .venv/bin/python bench/demo_seeds.py                      # seeds 0 1 2, configs/train/demo.yaml
    .venv/bin/python bench/demo_seeds.py --seeds 3 --config my_demo.yaml
    .venv/bin/python bench/demo_seeds.py --data-config configs/data/demo.yaml --continuation-share 0 --label x

--continuation-share trains on that share of the continuation records ("Go on." after an earlier part of a long
turn; every k-th, so 0.5 keeps every other one, 0 none). The eval's attribution classifier is trained on the
training split as filtered, so those runs also report attribution by a classifier trained on the whole split
(`attribution_full_split`), the instrument the unfiltered runs use.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PERSONA = [sys.executable, "-m", "personaforge"]
METRICS = ("semantic_similarity", "attribution", "cross_attribution", "rouge1")


def run(command: list[str], log) -> str:
    print("$", " ".join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    log.write(f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}\n")
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return done.stdout


def paired_results(runs: Path, log) -> dict[str, dict]:
    """The run against its baseline on each metric (one run and its baseline in ``runs``)."""
    board = json.loads(run([*PERSONA, "leaderboard", "--runs", str(runs), "--format", "json"], log))
    tests = {t["metric"]: t for t in board["baseline_tests"]}
    return {m: {"value": tests[m]["value"], "baseline": tests[m]["baseline_value"], **tests[m]["paired_test"]}
            for m in METRICS}


def keep_continuations(train: Path, share: float) -> None:
    """Keep ``share`` of the continuation records of ``train`` (every k-th, in file order); the whole split is kept
    beside it as train.full.jsonl."""
    lines = train.read_text(encoding="utf-8").splitlines(keepends=True)
    (train.parent / "train.full.jsonl").write_text("".join(lines), encoding="utf-8")
    kept, seen = [], 0
    for line in lines:
        if json.loads(line)["source"].get("question") == "continuation":
            seen += 1
            if math.floor((seen - 1) * share + 1e-9) <= math.floor((seen - 2) * share + 1e-9):
                continue
        kept.append(line)
    train.write_text("".join(kept), encoding="utf-8")
    print(f"{train}: {len(lines)} → {len(kept)} records ({seen} continuation records, share {share})", flush=True)


def attribution_full_split(runs: Path, data: Path) -> dict:
    """The fine-tune against its baseline on attribution by a classifier trained on the unfiltered split."""
    from personaforge.evaluate.attribution import PersonaClassifier
    from personaforge.evaluate.stats import ALPHA, paired_bootstrap

    def rows(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    train = rows(data / "train.full.jsonl")
    classifier = PersonaClassifier(seed=0).fit([r["completion"] for r in train], [r["persona"] for r in train])
    run = max(p for p in runs.iterdir() if p.is_dir() and p.name != "latest")
    tuned = rows(run / "eval" / "eval" / "predictions.jsonl")
    base = {r["id"]: r for r in rows(run / "eval" / "eval-baseline" / "predictions.jsonl")}

    def right(texts: list[str]) -> list[float]:
        return [float(named == r["persona"]) for named, r in zip(classifier.predict(texts), tuned, strict=True)]

    a, b = right([r["prediction"] for r in tuned]), right([base[r["id"]]["prediction"] for r in tuned])
    test = paired_bootstrap(a, b)
    return {"value": sum(a) / len(a), "baseline": sum(b) / len(b), **test, "samples": len(a),
            "significant": test["p_value"] < ALPHA}


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default="configs/train/demo.yaml")
    parser.add_argument("--data-config", default="configs/data/default.yaml")
    parser.add_argument("--out", type=Path, default=Path("outputs/demo-seeds"))
    parser.add_argument("--report-only", action="store_true", help="tabulate the seeds' finished runs again")
    parser.add_argument("--label", default="", help="results file suffix, so a trial keeps its own table")
    parser.add_argument("--continuation-share", type=float, default=1.0,
                        help="share of the continuation records to train on (1 = all, the demo)")
    args = parser.parse_args()
    out = args.out if args.out.is_absolute() else ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with open(out / "commands.log", "a", encoding="utf-8") as log:
        for seed in args.seeds:
            folder = out / f"seed{seed}"
            data = folder / "data"
            started = time.perf_counter()
            if not args.report_only:
                run([*PERSONA, "data", "build", args.data_config, "--seed", str(seed), "--out", str(data)], log)
                if args.continuation_share < 1:
                    keep_continuations(data / "train.jsonl", args.continuation_share)
                run([*PERSONA, "run", args.config, f"data.path={data}", f"train.seed={seed}",
                     f"output.dir={folder / 'runs'}", "--leaderboard-out", str(folder / "leaderboard")], log)
                (folder / "wall_s").write_text(f"{time.perf_counter() - started:.1f}\n")
            wall_file = folder / "wall_s"
            wall = float(wall_file.read_text()) if wall_file.exists() else float("nan")
            results = paired_results(folder / "runs", log)
            if (data / "train.full.jsonl").exists():
                results["attribution_full_split"] = attribution_full_split(folder / "runs", data)
            samples = results["semantic_similarity"]["samples"]
            rows.append((seed, wall, samples, results))
            print(f"seed {seed}: {samples} samples, {wall / 60:.1f} min", flush=True)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
    lines = [
        f"# Demo verdicts, {len(rows)} seed(s) ({date.today().isoformat()})", "",
        f"`{' '.join(sys.argv)}` with `{args.config}`, continuation share {args.continuation_share},"
        f" on {cpu_name()}, {len(__import__('os').sched_getaffinity(0))}"
        f" cores; load average at the end {' '.join(load)}. Each seed is both the split seed (`persona data build"
        " --seed`) and `train.seed`. p: one-sided paired bootstrap of the fine-tune against its untuned baseline"
        " on the same eval samples.", "",
        "| seed | eval samples | metric | fine-tuned | baseline | Δ (95% CI) | p | significant | wall (data+train+eval) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for seed, wall, samples, results in rows:
        for metric, r in results.items():
            ci = f"[{r['ci'][0]:+.3f}, {r['ci'][1]:+.3f}]" if r.get("ci") else ""
            lines.append(f"| {seed} | {samples} | {metric} | {r['value']:.3f} | {r['baseline']:.3f} | {r['delta']:+.3f}"
                         f" {ci} | {r['p_value']:.3f} | {'yes' if r['significant'] else 'no'} | {wall / 60:.1f} min |")
    text = "\n".join(lines) + "\n"
    print(text)
    suffix = f"-{args.label}" if args.label else ""
    target = ROOT / "bench" / "results" / f"{date.today().isoformat()}-demo-seeds{suffix}.md"
    target.write_text(text, encoding="utf-8")
    print(f"written: {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
