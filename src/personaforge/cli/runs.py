"""`persona runs list | show | rm`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from personaforge.cli.app import RUNS_DIR_HELP, runs_app
from personaforge.cli.console import console
from personaforge.fileio import display_path


@runs_app.command("list")
def runs_list(runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs")) -> None:
    """Every run with its status (stale = killed while running), model, date and final loss."""
    from personaforge.train.run import list_runs

    runs = list_runs(runs_dir)
    if not runs:
        print(f"no runs in {display_path(runs_dir)}")
        return
    table = Table(title=f"runs in {display_path(runs_dir)}")
    for column in ("run", "status", "model", "started", "loss", "eval loss"):
        table.add_column(column)
    for item in runs:
        metrics = item.read_json("train_metrics.json")
        started = item.read_json("status.json").get("started", "")
        model = (item.config.get("model") or {}).get("name", "?")
        loss = metrics.get("final_loss")
        eval_loss = metrics.get("eval_loss")
        table.add_row(item.name, item.status, model, started.replace("T", " "),
                      f"{loss:.4f}" if isinstance(loss, float) else "", f"{eval_loss:.4f}" if isinstance(eval_loss, float) else "")
    console.print(table)


@runs_app.command("show")
def runs_show(run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
              runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs")) -> None:
    """Status, config and metrics of one run."""
    import json

    from personaforge.train.run import resolve_run

    item = resolve_run(run, runs_dir)
    print(f"run: {display_path(item.path)}")
    print(f"status: {item.status}" + (f" ({item.message})" if item.message else ""))
    metrics = item.read_json("train_metrics.json")
    metrics.pop("loss_history", None)
    for name in ("env.json", "data.json"):
        data = item.read_json(name)
        if data:
            print(f"{name}: {json.dumps(data, ensure_ascii=False)}")
    if metrics:
        print(f"train_metrics.json: {json.dumps(metrics)}")
    checkpoint = item.last_checkpoint()
    print(f"last checkpoint: {checkpoint.name if checkpoint else 'none'}")


@runs_app.command("rm")
def runs_rm(run: Annotated[str, typer.Argument(help="Run folder or run name.")],
            runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs")) -> None:
    """Delete a run folder (not while it is running)."""
    from personaforge.train.run import remove_run, resolve_run

    item = resolve_run(run, runs_dir)
    remove_run(item)
    print(f"removed: {display_path(item.path)}")
