"""`persona eval`: a run (or the untuned base), or an eval config of the original pipeline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from personaforge.cli.app import ALLOW_PICKLE, RUNS_DIR_HELP, app
from personaforge.cli.console import err_console
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path


@app.command("eval")
def eval_command(
    run: Annotated[Optional[str], typer.Argument(help="Run folder, run name, or 'latest' (or an eval config of the"
                                                 " original pipeline: a .yaml file).")] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Evaluate the untuned base model with the same prompts.")] = False,
    split: Annotated[str, typer.Option(help="Which split to evaluate: eval or train.")] = "eval",
    max_samples: Annotated[Optional[int], typer.Option(help="A seeded subset stratified by persona.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="eval.* settings for this evaluation, e.g. eval.repetition_penalty=1.2 eval.max_new_tokens=96")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="An eval config of the original pipeline"
                      " (model_path, dataset_path, metrics_dir, use_gguf, ...): evaluates what it names.")] = None,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """Generate answers for the eval split and score them (metrics.json, predictions.jsonl, report.md)."""
    from personaforge.evaluate.runner import evaluate_run
    from personaforge.train.run import resolve_run

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    if max_samples is not None and max_samples < 1:
        raise PersonaForgeError("--max-samples must be at least 1")
    overrides = list(overrides or [])
    if config is None and run is not None and run.lower().endswith((".yaml", ".yml")) and Path(run).is_file():
        config, run = Path(run), None  # persona eval EVAL.yaml: the original's eval config, detected by its keys
    if config is not None:
        if run is not None:
            if "=" not in run:
                raise PersonaForgeError(f"give a run or --config, not both ('{run}' and --config {config})")
            overrides.insert(0, run)  # typer hands the first override to RUN
        if baseline or split != "eval":
            raise PersonaForgeError("--baseline and --split apply to runs; an eval config names its model and data")
        result = _eval_config(config, overrides, max_samples, allow_pickle, log)
    else:
        if run is None:
            raise PersonaForgeError("give a run (a folder, a name under outputs/runs, or latest), or --config EVAL.yaml")
        result = evaluate_run(resolve_run(run, runs_dir), baseline=baseline, split=split, max_samples=max_samples,
                              overrides=overrides, allow_pickle=allow_pickle, log=log)
    m = result.metrics
    lo, hi = m["ci"]["rouge1"]
    print(f"rouge1 {m['rouge1']:.3f} [{lo:.3f}, {hi:.3f}]  semantic {m['semantic_similarity']:.3f}  bleu {m['bleu']:.3f}"
          f"  attribution {m['attribution']['accuracy']:.2f}  blending {m['attribution']['blending_index'] or float('nan'):.3f}")
    print(f"eval: {display_path(result.folder)}")


def _eval_config(config: Path, overrides: list[str], max_samples: Optional[int], allow_pickle: bool, log):
    """persona eval --config: the original's eval config; llama.cpp failures after the start exit 1, one line."""
    from personaforge.evaluate.eval_config import evaluate_config
    from personaforge.llama_worker import LlamaFailed
    from personaforge.native import NativeCrash

    if not config.is_file():
        raise PersonaForgeError(f"--config {config}: file not found")
    try:
        return evaluate_config(config, overrides, max_samples=max_samples, allow_pickle=allow_pickle, log=log)
    except (NativeCrash, LlamaFailed) as failed:
        sys.stdout.flush()
        sys.stderr.write(f"error: {failed}\n")
        raise typer.Exit(1)
