"""`persona export gguf | ollama RUN`: a run's model as a GGUF file and Ollama Modelfiles."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

export_app = typer.Typer(no_args_is_help=True, help="Export a run: GGUF files and Ollama Modelfiles.")

RUNS_DIR_HELP = "Folder that holds the runs (output.dir)."


def _log(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(message, markup=False, highlight=False, soft_wrap=True)


def _status(text: str):
    from rich.console import Console

    return Console(stderr=True).status(text)


def _fail(message: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(1)


@export_app.command("gguf")
def gguf_command(
    run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
    quant: Annotated[str, typer.Option("--quant", help="f16, bf16, q8_0, f32 (converter) or Q4_K_M, Q5_K_M, Q6_K, ..."
                                       " (need llama.cpp: llama-quantize, or llama-cpp-python).")] = "q8_0",
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
) -> None:
    """Merge if needed, convert to GGUF with the run's prompt format, and check parity with the merged model."""
    from personaforge.export.gguf import ExportFailed, export_gguf, parse_quant, summary
    from personaforge.fileio import display_path
    from personaforge.merge import MergeCheckFailed
    from personaforge.train.run import resolve_run

    parse_quant(quant)  # an unknown type is reported before the run is even looked up
    target = resolve_run(run, runs_dir)
    try:
        with _status(f"exporting {target.name} to GGUF ({quant})"):
            result = export_gguf(target, quant, _log)
    except (ExportFailed, MergeCheckFailed) as failed:
        _fail(str(failed))
    print(summary(result.parity))
    print(f"gguf: {display_path(result.path)}")


@export_app.command("ollama")
def ollama_command(
    run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
) -> None:
    """Write RUN/export/Modelfile.<persona> for each persona, using the newest GGUF (q8_0 is exported if none)."""
    from personaforge.export.gguf import ExportFailed
    from personaforge.export.ollama import export_ollama
    from personaforge.fileio import display_path
    from personaforge.merge import MergeCheckFailed
    from personaforge.train.run import resolve_run

    target = resolve_run(run, runs_dir)
    try:
        with _status(f"writing Ollama Modelfiles for {target.name}"):
            result = export_ollama(target, _log)
    except (ExportFailed, MergeCheckFailed) as failed:
        _fail(str(failed))
    check = result.token_check
    if check is not None:
        print(f"prompt tokens: identical to training ({check['checked']} prompts through llama.cpp)")
    for path in result.modelfiles:
        slug = path.name.removeprefix("Modelfile.")
        print(f"modelfile: {display_path(path)}  (ollama create {slug} -f {display_path(path)})")
