"""`persona chat | ask | serve RUN`: talk to a run's personas."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the chat, ask and serve commands to the main app."""
