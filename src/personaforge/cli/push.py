"""`persona push RUN --repo USER/NAME`: publish a run to the Hugging Face Hub with a generated model card."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

RUNS_DIR_HELP = "Folder that holds the runs (output.dir)."


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def push_command(
    run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
    repo: Annotated[str, typer.Option("--repo", help="Hub repo OWNER/NAME; one repo holds the lineup.")],
    subfolder: Annotated[str | None, typer.Option(help="Folder in the repo for this model (default: the run's"
                                                     " config name, e.g. smollm2_135m_instruct).")] = None,
    adapter: Annotated[bool, typer.Option("--adapter", help="Upload only the LoRA adapter, not merged weights.")] = False,
    private: Annotated[bool, typer.Option("--private/--public", help="Visibility of a new repo.")] = True,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write the exact upload folder instead; needs no token.")] = False,
    out: Annotated[Path | None, typer.Option(help="With --dry-run: where the folder goes (default: RUN/push).")] = None,
    confirm_rights: Annotated[bool, typer.Option("--confirm-rights", help="Confirm you hold the rights to publish"
                                                 " personas whose cards record no consent.")] = False,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
) -> None:
    """Upload merged weights (or the adapter), tokenizer, GGUF and a generated model card to the Hugging Face Hub."""
    from rich.console import Console

    from personaforge.export.hub import PushOptions, check_repo, push
    from personaforge.fileio import display_path
    from personaforge.merge import MergeCheckFailed
    from personaforge.train.run import resolve_run

    err = Console(stderr=True)

    def log(message: str) -> None:
        err.print(message, markup=False, highlight=False, soft_wrap=True)

    options = PushOptions(run=resolve_run(run, runs_dir), repo=check_repo(repo), subfolder=subfolder, adapter=adapter,
                          private=private, dry_run=dry_run, out=out, confirm_rights=confirm_rights)
    try:
        result = push(options, log)
    except MergeCheckFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        raise typer.Exit(1)
    for name, size in result.files:
        print(f"  {name}  {_size(size)}")
    total = _size(sum(size for _, size in result.files))
    for note in result.notes:
        log(f"note: {note}")
    visibility = "private" if private else "public"
    if result.folder is not None:
        print(f"would upload {len(result.files)} files ({total}) to {result.repo}/{result.subfolder} ({visibility})")
        print(f"push folder: {display_path(result.folder)}")
    else:
        print(f"uploaded {len(result.files)} files ({total})")
        print(f"pushed: {result.url}")


def register(app: typer.Typer) -> None:
    """Adds the push command to the main app."""
    app.command("push")(push_command)
