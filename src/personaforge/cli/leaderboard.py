"""`persona leaderboard`, and the report `persona run` and `persona sweep` end with."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from personaforge.cli.app import app
from personaforge.cli.console import err_console
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path


@app.command("leaderboard")
def leaderboard_command(
    runs: Annotated[Path, typer.Option("--runs", help="Folder searched recursively for evaluated runs.")] = Path("outputs/runs"),
    metric: Annotated[str, typer.Option(help=METRIC_HELP)] = "rouge1",
    fmt: Annotated[str, typer.Option("--format", help="md, csv, json or html (printed to stdout).")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="Also write every format, plots and report.html here.")] = None,
) -> None:
    """Rank evaluated runs, compare base vs instruct, and say whether the winner is significantly better."""
    from personaforge.leaderboard import build_leaderboard, collect

    renderers = {"md": "to_markdown", "csv": "to_csv", "json": "to_json", "html": "to_html"}
    if fmt.lower() not in renderers:
        raise PersonaForgeError(f"--format {fmt}: use one of {', '.join(renderers)}")
    board = build_leaderboard(collect(runs), metric=metric, runs_dir=runs)
    if out is not None:
        board.write_all(out)
    print(getattr(board, renderers[fmt.lower()])())
    if out is not None:
        err_console.print(f"report: {display_path(out / 'report.html')}", markup=False)


METRIC_HELP = "Metric to rank by (the fine-tune is tested against its baseline on the key metrics whatever ranks)."


def check_metric_name(metric: str) -> None:
    """Before a pipeline trains for an hour: a metric eval never writes cannot rank its leaderboard."""
    from personaforge.evaluate.metrics import DEFINITIONS
    from personaforge.leaderboard import NOT_RANKABLE

    # Defined but not a per-run number the board ranks: parts of the attribution report, the scale references, and
    # per-sample stand-ins for corpus metrics.
    described_only = {"real_answer_level", "retrieval_level", "attribution_accuracy", "attribution_macro_f1",
                      "blending_index"}
    names = [name for name in DEFINITIONS
             if name not in NOT_RANKABLE and name not in described_only and not name.startswith("sentence_")]
    if metric not in names:
        raise PersonaForgeError(f"--metric {metric}: unknown metric; use one of: {', '.join(names)}")


def print_leaderboard(runs_dir: Path, out: Path, metric: str = "rouge1") -> None:
    from personaforge.leaderboard import build_leaderboard, collect

    board = build_leaderboard(collect(runs_dir), metric=metric, runs_dir=runs_dir)
    board.write_all(out)
    print(board.to_markdown())
    print(f"report: {display_path(out / 'report.html')}")
