"""The rich consoles the command line prints through."""

from __future__ import annotations

import sys

from rich.console import Console

# Wide enough for any table row we print.
PIPE_WIDTH = 10_000


def make_console(stderr: bool = False) -> Console:
    """A console for stdout (or stderr). Piped or redirected, rich would wrap tables at 80 columns and split cells
    over lines (`pkg:smollm2-135m-instruct` became three lines, which `grep` then misses); there, every row is
    printed whole on one line instead."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=PIPE_WIDTH)


# What the commands print through: results on stdout, logs and warnings on stderr.
console = make_console()
err_console = make_console(stderr=True)
