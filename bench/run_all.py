"""`make bench`: data build, training three ways, evaluation generation; one results file and Markdown tables.

Writes bench/results/<date>-<host>.json (ratios under keys named *_ratio) and prints the tables. The sizes are
options, with defaults chosen so the whole run takes minutes on a 2-core CPU, not hours:

  .venv/bin/python bench/run_all.py --steps 8 --batch-size 8 --prompts 32 --batch-sizes 8,16,32
  make bench BENCH_ARGS="--steps 4 --prompts 8"       # a quicker look
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_build  # noqa: E402
import eval_generation  # noqa: E402
import train_throughput  # noqa: E402
from common import REPO, build_bundled_dataset, fmt, machine, markdown_table, result_path, write_json  # noqa: E402

PARTS = ("data", "train", "eval")
LOSS_TOLERANCE = 0.01  # final held-out losses within 1% count as equal


def _met(value: float | None, ok: bool | None) -> str:
    return "—" if value is None or ok is None else ("met" if ok else "MISSED")


def targets(results: dict) -> list[list[str]]:
    rows = []
    training = results.get("training")
    if training:
        trainers = training["trainers"]
        losses = {n: r.get("final_heldout_loss") for n, r in trainers.items() if r.get("final_heldout_loss")}
        ours = losses.get("personaforge")
        for other, goal in (("original", 3.0), ("trl", 1.2)):
            ratio = training.get(f"personaforge_vs_{other}_ratio")
            label = "original-style" if other == "original" else "TRL SFTTrainer"
            rows.append([f"training speed vs {label} (real tokens/s, = per epoch)", f"{fmt(ratio)}×", f"≥ {goal}×",
                         _met(ratio, ratio is not None and ratio >= goal)])
        if ours and len(losses) > 1:
            spread = max(abs(v - ours) / ours for v in losses.values())
            rows.append(["final held-out loss, " + " / ".join(losses), " / ".join(fmt(v, 4) for v in losses.values()),
                         f"equal (within {LOSS_TOLERANCE:.0%})", _met(spread, spread <= LOSS_TOLERANCE)])
        ours_row = trainers.get("personaforge", {})
        util, dtype = ours_row.get("utilisation_ratio"), ours_row.get("dtype", "float32")
        rows.append([f"training utilisation (model FLOP/s ÷ {dtype} matmul peak)",
                     f"{fmt(100 * util, 1)}%" if util else "—", "reported", "—"])
        for other, ratio in sorted((ours_row.get("utilisation_by_peak") or {}).items()):
            if other != dtype:
                rows.append([f"training utilisation against the {other} matmul peak (not the dtype used)",
                             f"{fmt(100 * ratio, 1)}%", "reported", "—"])
    evaluation = results.get("evaluation")
    if evaluation:
        ratios = {k: v for k, v in evaluation.items() if k.endswith("_vs_single_ratio")}
        if ratios:
            key = max(ratios, key=ratios.get)
            size = key.removeprefix("batch").removesuffix("_vs_single_ratio")
            rows.append([f"batched evaluation (batch {size}) vs one at a time", f"{fmt(ratios[key])}×", "≥ 5×",
                         _met(ratios[key], ratios[key] >= 5)])
            share = evaluation[f"batch_{size}"]["identical_share"]
            rows.append([f"identical greedy answers (batch {size})", f"{100 * share:.0f}%", "reported", "—"])
    row = results.get("data_build")
    if row:
        rows.append(["data build, seconds per MB of transcript", fmt(row["seconds_per_mb"]),
                     f"< {row.get('target_seconds_per_mb', 10):g}",
                     _met(row["seconds_per_mb"], row["target_met"])])
    return rows


def report(results: dict) -> str:
    m = results["machine"]
    parts = [f"## personaforge benchmark — {results['date']}, {m['host']}: {m['cpu']}, {m['cores']} cores,"
             f" torch {m['torch']}" + (f", {m['gpu']}" if m.get("gpu") else ""), "",
             markdown_table(["measure", "value", "target", ""], targets(results))]
    if "training" in results:
        s = results["training"]["settings"]
        heading = (f"### Training: {s['steps']} optimizer steps of {s['batch_size']} samples, {s['threads']} thread(s),"
                   f" {s['model']}, {s['config']}")
        parts += ["", heading, "", train_throughput.table(results["training"]), "",
                  "FLOPs: " + results["training"]["flops_formula"]]
    if "evaluation" in results:
        s = results["evaluation"]["settings"]
        heading = (f"### Evaluation: {s['prompts']} eval prompts, greedy, up to {s['max_new_tokens']} new tokens,"
                   f" {s['threads']} thread(s), {s.get('dtype', 'float32')} weights")
        parts += ["", heading, "", eval_generation.table(results["evaluation"])]
    if "data_build" in results:
        parts += ["", "### Data build", "", data_build.table(results["data_build"])]
    return "\n".join(parts)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", type=lambda s: [x for x in s.split(",") if x], default=list(PARTS),
                   help="comma-separated parts to run: data, train, eval (default: all)")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per trainer (default 8)")
    p.add_argument("--batch-size", type=int, default=8, help="training samples per step (default 8)")
    p.add_argument("--heldout", type=int, default=16, help="held-out samples for the final loss (default 16)")
    p.add_argument("--trainers", default=",".join(train_throughput.TRAINERS),
                   help="comma-separated: personaforge, original, trl (and the diagnostic trl-defaults)")
    p.add_argument("--prompts", type=int, default=32, help="eval prompts (default 32)")
    p.add_argument("--batch-sizes", default="8,16,32", help="generation batch sizes (default 8,16,32)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="answer length cap in evaluation (default 64)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--profile", help="also write torch.profiler tables of training steps 2-3 into this folder (slows the measured"
                   " steps: not for the numbers)")
    p.add_argument("--out", help="results file (default bench/results/<date>-<host>.json)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    unknown = [part for part in args.only if part not in PARTS]
    if unknown:
        parser().error(f"--only: unknown {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    known = train_throughput.TRAINERS + train_throughput.DIAGNOSTIC
    unknown = [name for name in args.trainers.split(",") if name and name not in known]
    if unknown:
        parser().error(f"--trainers: unknown {', '.join(unknown)}; choose from {', '.join(known)}")
    info = machine()
    results: dict = {"date": result_path().stem[:10], "host": info["host"], "machine": info}
    out = Path(args.out) if args.out else result_path()
    with tempfile.TemporaryDirectory(prefix="pf-bench-") as tmp:
        data = build_bundled_dataset(Path(tmp) / "data")
        if "data" in args.only:
            print("[data] building ~1 MB of transcripts", file=sys.stderr)
            results["data_build"] = data_build.measure()
            write_json(out, results)  # after every part: a later failure never loses minutes of measurements
        if "train" in args.only:
            train_args = train_throughput.parser().parse_args([
                "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
                "--heldout", str(args.heldout), "--trainers", args.trainers, "--data", str(data), "--memory",
                *(["--profile", args.profile] if args.profile else [])])
            results["training"] = train_throughput.run(train_args)
            write_json(out, results)
        if "eval" in args.only:
            eval_args = eval_generation.parser().parse_args([
                "--prompts", str(args.prompts), "--batch-sizes", args.batch_sizes, "--max-new-tokens",
                str(args.max_new_tokens), "--threads", str(args.threads), "--data", str(data)])
            results["evaluation"] = eval_generation.run(eval_args)
            write_json(out, results)
    print(report(results))
    print(f"\nresults: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")


if __name__ == "__main__":
    main()
