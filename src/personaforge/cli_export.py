"""`persona export gguf | ollama RUN`: a run's model as a GGUF file and Ollama Modelfiles."""

from __future__ import annotations

import typer

export_app = typer.Typer(no_args_is_help=True, help="Export a run: GGUF files and Ollama Modelfiles.")
