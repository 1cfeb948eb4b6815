"""`persona train` (and --check, --resume) and `persona merge`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from personaforge.cli.app import ALLOW_PICKLE, RUNS_DIR_HELP, app, pickle_override
from personaforge.cli.console import err_console
from personaforge.cli.progress import train_progress
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path


@app.command("train")
def train_command(
    config: Annotated[Optional[Path], typer.Argument(help="Training config YAML.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. train.epochs=2 lora.r=8")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue RUN from its last checkpoint.")] = None,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
    check: Annotated[bool, typer.Option("--check", help="Run every preflight check (config, data, model source,"
                                        " tokenization, LoRA targets, memory) and exit; creates nothing.")] = False,
) -> None:
    """Fine-tune a model with LoRA on a built dataset; prints `run: PATH` last."""
    from personaforge.config import load_train_config
    from personaforge.train import RunFailed, resume as resume_run, train

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    if check:
        from personaforge.train import check as check_config

        if resume is not None:
            raise PersonaForgeError("--check takes a CONFIG, not --resume RUN")
        if config is None:
            raise PersonaForgeError("give a training config to check, e.g. persona train --check configs/train/demo.yaml")
        cfg, notes = load_train_config(config, [*(overrides or []), *pickle_override(allow_pickle)])
        for note in notes:
            print(f"note: {note}")
        for line in check_config(cfg):
            print(line)
        print(f"ok: {display_path(config)} passes every preflight check; nothing was created")
        return
    try:
        if resume is not None:
            if config is not None:
                raise PersonaForgeError("--resume RUN takes no CONFIG: the run keeps the config it started with")
            run = resume_run(resume, runs_dir, log=log, progress=train_progress)
        else:
            if config is None:
                raise PersonaForgeError("give a training config, e.g. persona train configs/train/smollm2_135m_instruct.yaml")
            cfg, notes = load_train_config(config, [*(overrides or []), *pickle_override(allow_pickle)])
            for note in notes:
                log(f"note: {note}")
            run = train(cfg, config.stem, log=log, progress=train_progress)
    except RunFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        print(f"run: {display_path(failed.run.path)}")
        raise typer.Exit(1)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun/accelerate only the main process reports
    status = run.status
    if status != "finished":
        log(f"{status}: {run.message or ''}")
    print(f"run: {display_path(run.path)}")


@app.command("merge")
def merge_command(
    run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """Merge a run's LoRA adapter into the base weights (checked against the adapter model)."""
    from personaforge.merge import MergeCheckFailed, merge_run
    from personaforge.train.run import resolve_run

    try:
        result = merge_run(resolve_run(run, runs_dir), log=lambda m: err_console.print(m, markup=False),
                           allow_pickle=allow_pickle)
    except MergeCheckFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        raise typer.Exit(1)
    print(f"merged: {display_path(result.path)} (max |Δ logit| {result.max_abs_diff:.2e}, tolerance {result.tolerance})")
