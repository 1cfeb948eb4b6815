"""The command line, `persona`: one module per command group, each a thin layer that parses arguments, calls one
stage entry function and prints. Only this package knows typer and rich; this module assembles the commands (in the
order `persona --help` lists them) and turns errors into one `error:` line and an exit code.
"""

from __future__ import annotations

import faulthandler
import sys

import click
import typer

from personaforge.cli import arena, chat, push, studio
from personaforge.cli.app import app, data_app, runs_app
from personaforge.cli.export import export_app
from personaforge.cli.models import models_app
from personaforge.errors import PersonaForgeError

app.add_typer(data_app, name="data")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(export_app, name="export")
chat.register(app)
push.register(app)
studio.register(app, data_app)
arena.register(app)
# These modules add their commands to app / data_app / runs_app as they are imported, after the ones above.
from personaforge.cli import data, train, runs, evaluate, leaderboard, pipeline  # noqa: E402,F401  isort:skip

__all__ = ["app", "main"]


# typer >= 0.2x vendors click: its usage errors derive from typer.TyperException, not click.ClickException.
_CLICK_ERRORS = (click.ClickException, *((typer.TyperException,) if hasattr(typer, "TyperException") else ()))
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort, KeyboardInterrupt)


def _usage_error(exc: Exception) -> int:
    """A bad option or argument as one `error:` line (no usage block, no traceback); help alone when no args."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        return exc.exit_code
    ctx = getattr(exc, "ctx", None)
    hint = f"; see {ctx.command_path} --help" if ctx is not None else ""
    sys.stderr.write(f"error: {' '.join(exc.format_message().split()).rstrip('.')}{hint}\n")
    return getattr(exc, "exit_code", 2)


def main() -> None:
    # Native code runs in this process too (torch's kernels, chosen by CPU features): if it crashes, the stack
    # of the Python call that reached it is printed instead of a bare "Segmentation fault".
    try:
        faulthandler.enable()
    except (ValueError, OSError, AttributeError):  # stderr is no real file (called in-process, output captured)
        pass
    try:
        code = app(standalone_mode=False)
    except PersonaForgeError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except _EXITS as exc:
        sys.exit(exc.exit_code)
    except _CLICK_ERRORS as exc:
        sys.stdout.flush()
        sys.exit(_usage_error(exc))
    except _ABORTS:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
