"""`persona push RUN --repo USER/NAME`: publish a run to the Hugging Face Hub with a generated model card."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the push command to the main app."""
