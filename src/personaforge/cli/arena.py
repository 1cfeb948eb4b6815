"""`persona arena export`: the arena's votes and ratings as one JSON document (the votes are cast in the studio)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

arena_app = typer.Typer(no_args_is_help=True, help="The blind arena's votes and ratings (vote in persona studio).")


@arena_app.command("export")
def export_command(
    runs: Annotated[Path, typer.Option("--runs", help="The runs folder; its votes are in arena/votes.jsonl.")]
    = Path("outputs/runs"),
    out: Annotated[Optional[Path], typer.Option(help="Write the JSON here instead of stdout.")] = None,
) -> None:
    """Every vote (who was on which side, question, choice, time) and the Bradley-Terry ratings with intervals."""
    from personaforge.arena.export import export
    from personaforge.fileio import atomic_write_text, display_path, dumps_json

    data = export(runs)
    for warning in data["warnings"]:
        sys.stderr.write(f"warning: {warning}\n")
    text = dumps_json(data)
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        atomic_write_text(out, text)
        sys.stderr.write(f"{len(data['votes'])} votes and ratings written to {display_path(out)}\n")


def register(app: typer.Typer) -> None:
    app.add_typer(arena_app, name="arena")
