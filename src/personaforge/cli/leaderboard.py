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
    metric: Annotated[str, typer.Option(help="Metric to rank by.")] = "rouge1",
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


def print_leaderboard(runs_dir: Path, out: Path) -> None:
    from personaforge.leaderboard import build_leaderboard, collect

    board = build_leaderboard(collect(runs_dir), runs_dir=runs_dir)
    board.write_all(out)
    print(board.to_markdown())
    print(f"report: {display_path(out / 'report.html')}")
