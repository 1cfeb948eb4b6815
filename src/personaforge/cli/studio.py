"""`persona studio` (review records in a local web app) and `persona data review-status` (the same progress here)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from personaforge.errors import PersonaForgeError

CONFIG_HELP = "Data config YAML: the dataset is its `out`, decisions go to its review file."
DATA_HELP = "A built dataset folder instead of a config (decisions: DIR.review.jsonl beside it)."
RUNS_HELP = ("Runs folder for the arena tab (default: outputs/runs when it has evaluated runs); alone, without a"
             " CONFIG or --data, the studio is only the arena.")
REVIEW_HELP = "The review file (default: data.review_file, else <out>.review.jsonl beside the dataset)."


def _locate(config: Optional[Path], data: Optional[Path], review_file: Optional[Path]) -> tuple[Path, Optional[Path]]:
    from personaforge.config import load_data_config
    from personaforge.dataset.review import review_path

    if config is not None and data is not None:
        raise PersonaForgeError("give a data CONFIG or --data DIR, not both")
    if data is not None:
        return data, review_file
    cfg, _ = load_data_config(config)
    return Path(cfg.out), review_file or review_path(cfg)


def studio_command(
    config: Annotated[Optional[Path], typer.Argument(help=CONFIG_HELP)] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP)] = None,
    review_file: Annotated[Optional[Path], typer.Option("--review-file", help=REVIEW_HELP)] = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but loopback requires the printed token.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8765,
    runs: Annotated[Optional[Path], typer.Option("--runs", help=RUNS_HELP)] = None,
) -> None:
    """Review every record in a local web app: accept, edit, reject, flag; every later build applies the decisions.
    The arena tab (/arena) compares evaluated runs and the real answers blind."""
    from personaforge.fileio import display_path
    from personaforge.studio.security import Security
    from personaforge.studio.state import Studio

    from personaforge.studio.arena import open_arena

    arena_only = runs is not None and config is None and data is None
    studio = None if arena_only else Studio.open(*_locate(config, data, review_file))
    arena = open_arena(runs, required=runs is not None)
    security = Security(host=host)

    from personaforge.studio.app import bind, create_app, serve, url_of

    sock = bind(host, port)
    url = url_of(host, sock.getsockname()[1], security)
    app = create_app(studio, security, arena)

    def ready() -> None:
        print(f"studio on {url}", flush=True)
        lines = [f"reviewing {len(studio.records)} records of {display_path(studio.dataset)}; decisions go to"
                 f" {display_path(studio.review_file)}"] if studio else []
        if arena is not None:
            lines.append(f"arena: {url.split('?')[0]}arena compares {len(arena.pool.competitors())} competitors;"
                         f" votes go to {display_path(arena.log.path)}")
        lines.append("stop with Ctrl-C")
        if security.require_token:
            lines.insert(0, "not on loopback: every request needs the token in this URL (shown once)")
        lines.extend(f"warning: {w}" for w in (studio.log.warnings if studio else []))
        sys.stderr.write("".join(f"{line}\n" for line in lines))
        sys.stderr.flush()

    serve(app, sock, ready)
    sys.stderr.write("studio stopped\n")


def review_status_command(
    config: Annotated[Optional[Path], typer.Argument(help=CONFIG_HELP)] = None,
    data: Annotated[Optional[Path], typer.Option("--data", help=DATA_HELP)] = None,
    review_file: Annotated[Optional[Path], typer.Option("--review-file", help=REVIEW_HELP)] = None,
) -> None:
    """Review progress per persona and type, and every stale decision with its old and new text."""
    from rich.table import Table

    from personaforge.cli.console import make_console
    from personaforge.fileio import display_path
    from personaforge.studio.state import Studio

    dataset, review = _locate(config, data, review_file)
    studio = Studio.open(dataset, review)
    progress = studio.progress()
    stale = studio.stale()
    console = make_console()
    for warning in studio.log.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    where = display_path(studio.review_file)
    exists = studio.review_file.is_file()
    console.print(f"{display_path(studio.dataset)}: {len(studio.records)} records; decisions: {where}"
                  + ("" if exists else " (none yet)"), markup=False, highlight=False, soft_wrap=True)
    columns = ("reviewed", "accepted", "edited", "rejected", "flagged", "stale")
    table = Table(title="review progress (reviewed = accepted + edited + rejected + flagged)")
    table.add_column("persona")
    table.add_column("type")
    for column in columns:
        table.add_column(column, justify="right")

    def cells(counts: dict) -> list[str]:
        return [f"{counts['reviewed']}/{counts['total']}" if c == "reviewed" else str(counts[c]) for c in columns]

    for persona, types in progress["by_persona_type"].items():
        for record_type, counts in types.items():
            table.add_row(persona, record_type, *cells(counts))
    table.add_row("all", "", *cells(progress["totals"]))
    console.print(table)
    for item in stale["stale"]:
        decision = item["decision"]
        console.print(f"stale: {item['id']}: {decision['status']} at {decision['at']} on text that changed since;"
                      " not applied, decide again in the studio", markup=False, highlight=False, soft_wrap=True)
        for side in ("old", "new"):
            for field in ("question", "answer"):
                if item["old"][field] != item["new"][field]:
                    console.print(f"  {side} {field}: {item[side][field]}", markup=False, highlight=False,
                                  soft_wrap=True)
    for item in stale["orphaned"]:
        decision = item["decision"]
        console.print(f"orphaned: {item['id']}: {decision['status']} at {decision['at']}; the build has no such record"
                      " now", markup=False, highlight=False, soft_wrap=True)
    total = progress["totals"]
    console.print(f"reviewed {total['reviewed']} of {total['total']}; {len(stale['stale'])} stale,"
                  f" {len(stale['orphaned'])} orphaned", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer, data_app: typer.Typer) -> None:
    """Adds `persona studio` and `persona data review-status`."""
    app.command("studio")(studio_command)
    data_app.command("review-status")(review_status_command)
