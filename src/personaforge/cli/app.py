"""The root command and the groups other modules add commands to, and the options several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

from personaforge import __version__

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Turn interview and documentary transcripts into LLMs that speak as the people in them.")
data_app = typer.Typer(no_args_is_help=True, help="Build, check and inspect persona datasets.")
runs_app = typer.Typer(no_args_is_help=True, help="List, inspect and remove training runs.")

RUNS_DIR_HELP = "Folder that holds the runs (output.dir)."
ALLOW_PICKLE = typer.Option("--allow-pickle", help="Also load pickle weights (.bin/.pt), which can run code when"
                            " loaded; only for sources you trust (sets model.allow_pickle=true).")


def pickle_override(allow_pickle: bool) -> list[str]:
    return ["model.allow_pickle=true"] if allow_pickle else []


def _version(value: bool) -> None:
    if value:
        print(f"personaforge {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """personaforge: transcripts → persona datasets → fine-tuned persona models."""
