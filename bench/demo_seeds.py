"""The demo's verdicts under three seeds: is the fine-tune significantly better than its untuned baseline?

For each seed, builds the bundled dataset with that split seed, runs the demo config with that training seed
(train → merge → eval + baseline), then asks the leaderboard for the paired test of the run against its baseline
on persona attribution, semantic similarity and ROUGE-1. Writes bench/results/<date>-demo-seeds.md.

    .venv/bin/python bench/demo_seeds.py                      # seeds 0 1 2, configs/train/demo.yaml
    .venv/bin/python bench/demo_seeds.py --seeds 3 --config my_demo.yaml
"""

from __future__ import annotations

import argparse
import json
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
                run([*PERSONA, "run", args.config, f"data.path={data}", f"train.seed={seed}",
                     f"output.dir={folder / 'runs'}", "--leaderboard-out", str(folder / "leaderboard")], log)
                (folder / "wall_s").write_text(f"{time.perf_counter() - started:.1f}\n")
            wall_file = folder / "wall_s"
            wall = float(wall_file.read_text()) if wall_file.exists() else float("nan")
            results = paired_results(folder / "runs", log)
            samples = results["semantic_similarity"]["samples"]
            rows.append((seed, wall, samples, results))
            print(f"seed {seed}: {samples} samples, {wall / 60:.1f} min", flush=True)
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else ["?"] * 3
    lines = [
        f"# Demo verdicts, {len(rows)} seed(s) ({date.today().isoformat()})", "",
        f"`{' '.join(sys.argv)}` with `{args.config}` on {cpu_name()}, {len(__import__('os').sched_getaffinity(0))}"
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
