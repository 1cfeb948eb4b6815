"""`persona run` and `persona sweep`: the whole pipeline for one config, or for many."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from personaforge.cli.app import ALLOW_PICKLE, app, pickle_override
from personaforge.cli.console import console, err_console
from personaforge.cli.leaderboard import METRIC_HELP, check_metric_name, print_leaderboard
from personaforge.cli.progress import train_progress
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path


# The options run and sweep share (sweep passes them to every config's pipeline).
DataConfigOption = Annotated[Optional[Path], typer.Option(help="Data config used when data.path is missing"
                                                          " (default: configs/data/default.yaml).")]
BaselineOption = Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate the untuned base model.")]
MaxSamplesOption = Annotated[Optional[int], typer.Option(help="Evaluate a seeded stratified subset.")]
LeaderboardOutOption = Annotated[Optional[Path], typer.Option(help="Where the leaderboard report goes"
                                                              " (default: next to output.dir, in leaderboard/).")]
MetricOption = Annotated[str, typer.Option(help=METRIC_HELP)]


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Training config YAML.")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides")] = None,
    data_config: DataConfigOption = None,
    baseline: BaselineOption = True,
    max_samples: MaxSamplesOption = None,
    leaderboard_out: LeaderboardOutOption = None,
    metric: MetricOption = "rouge1",
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """The whole pipeline: build the data if missing → train → merge → eval (+ baseline) → leaderboard."""
    from personaforge.pipeline import run_pipeline
    from personaforge.train import RunFailed

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    check_metric_name(metric)
    try:
        result = run_pipeline(config, [*(overrides or []), *pickle_override(allow_pickle)],
                              data_config=data_config, baseline=baseline,
                              max_samples=max_samples, log=log, progress=train_progress)
    except RunFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        print(f"run: {display_path(failed.run.path)}")
        raise typer.Exit(1)
    if result.status != "finished":
        sys.stderr.write(f"error: run {result.run.name} is {result.status}: {result.message}\n")
        print(f"run: {display_path(result.run.path)}")
        raise typer.Exit(1)
    runs_dir = result.run.path.parent
    print_leaderboard(runs_dir, leaderboard_out or runs_dir.parent / "leaderboard", metric)
    print(f"run: {display_path(result.run.path)}")


@app.command("sweep")
def sweep_command(
    configs: Annotated[list[Path], typer.Argument(help="Training configs, e.g. configs/train/*.yaml")],
    data_config: DataConfigOption = None,
    baseline: BaselineOption = True,
    max_samples: MaxSamplesOption = None,
    leaderboard_out: LeaderboardOutOption = None,
    metric: MetricOption = "rouge1",
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """Run the pipeline for each config, skipping finished runs and continuing past failures."""
    from personaforge.merge import MergeCheckFailed
    from personaforge.pipeline import PipelineResult, run_pipeline
    from personaforge.train import RunFailed

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    check_metric_name(metric)
    missing = [str(c) for c in configs if not c.is_file()]
    if missing:
        raise PersonaForgeError(f"config not found: {', '.join(missing)}")
    results: list[PipelineResult] = []
    for config in configs:
        log(f"== {display_path(config)}")
        try:
            results.append(run_pipeline(config, pickle_override(allow_pickle), data_config=data_config,
                                        baseline=baseline, max_samples=max_samples,
                                        reuse_finished=True, log=log, progress=train_progress))
        except (RunFailed, PersonaForgeError, MergeCheckFailed) as failed:
            log(f"error: {display_path(config)}: {failed}")
            results.append(PipelineResult(config, getattr(failed, "run", None), "failed", str(failed)))
    table = Table(title="sweep")
    for column in ("config", "status", "run", "note"):
        table.add_column(column)
    for item in results:
        note = "skipped: already finished and evaluated" if item.skipped else item.message
        table.add_row(display_path(item.config), item.status, item.run.name if item.run else "-", note[:120])
    console.print(table)
    done = [r for r in results if r.run is not None and r.status == "finished"]
    if done:
        runs_dir = done[0].run.path.parent
        print_leaderboard(runs_dir, leaderboard_out or runs_dir.parent / "leaderboard", metric)
    failed = [r for r in results if r.status != "finished"]
    if failed:
        sys.stderr.write(f"error: {len(failed)} of {len(results)} config(s) did not finish: "
                         f"{', '.join(display_path(r.config) for r in failed)}\n")
        raise typer.Exit(1)
