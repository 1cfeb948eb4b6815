"""`persona leaderboard`: eval results across runs, collected (collect), ranked and compared per eval set (rank),
and rendered as markdown, csv, json, plots and a self-contained HTML report.

Data flow: ``collect(runs_dir)`` finds every ``<run>/eval/<name>/metrics.json`` → one :class:`Entry` each;
``build_leaderboard(entries, metric)`` groups entries by eval fingerprint and decoding settings (runs scored
on different eval records, or decoded differently, are never ranked against each other), ranks each group,
runs a paired bootstrap between the top two, pairs base and instruct models of one family, and compares
fine-tuned runs with their untuned baseline. Each renderer reads the board (rank.Board) and shares display
strings (display.py), never another renderer; this module only puts them side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from personaforge.arena.ratings import arena_summary, load_ratings
from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_bytes, atomic_write_text, display_path, dumps_json
from personaforge.leaderboard import html_report, markdown, plots, tables
from personaforge.leaderboard.collect import BASELINE_SUFFIX, LATEST, Entry, collect
from personaforge.leaderboard.display import PLOT_PATTERN
from personaforge.leaderboard.names import human_size, parse_family, parse_instruct, parse_size
from personaforge.leaderboard.rank import (DEFAULT_METRIC, KEY_METRICS, NOT_RANKABLE, BaselineDelta, Board, EvalSet,
                                           FamilyComparison, Paired, Row, Verdict, available_metrics, build_board,
                                           paired_test)

__all__ = ["BASELINE_SUFFIX", "DEFAULT_METRIC", "KEY_METRICS", "LATEST", "NOT_RANKABLE", "BaselineDelta", "Board",
           "Entry", "EvalSet", "FamilyComparison", "Leaderboard", "Paired", "Row", "Verdict", "available_metrics",
           "build_leaderboard", "collect", "human_size", "paired_test", "parse_family", "parse_instruct",
           "parse_size"]


@dataclass
class Leaderboard(Board):
    """The board with its renderers at hand: what `persona leaderboard` prints or writes."""

    def to_markdown(self) -> str:
        return markdown.render(self)

    def to_csv(self) -> str:
        return tables.render_csv(self)

    def to_dict(self) -> dict[str, Any]:
        return tables.as_dict(self)

    def to_json(self) -> str:
        return dumps_json(self.to_dict())

    def to_html(self) -> str:
        """A self-contained report: the plots are embedded as base64 PNG, so the one file can be moved or mailed."""
        return html_report.render_html(self, plots.render_plots(self))

    def write_all(self, out_dir: Path) -> list[Path]:
        """leaderboard.md/.csv/.json, report.html and plots/*.png in out_dir; returns the paths written."""
        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise PersonaForgeError(f"--out {display_path(out_dir)} is a file; give a folder")
        # Everything is rendered before the first write, so a failure leaves the old report whole.
        pngs = plots.render_plots(self)
        texts = {"leaderboard.md": self.to_markdown(), "leaderboard.csv": self.to_csv(),
                 "leaderboard.json": self.to_json(), "report.html": html_report.render_html(self, pngs)}
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PersonaForgeError(f"--out {display_path(out_dir)}: cannot create ({exc.strerror}); choose a"
                                    " writable folder") from None
        written = []
        for name, data in pngs.items():
            atomic_write_bytes(out_dir / "plots" / name, data)
            written.append(out_dir / "plots" / name)
        # A plot of a run that is gone (removed, or no longer evaluated) would contradict the report.
        if (out_dir / "plots").is_dir():
            for stale in (out_dir / "plots").glob("*.png"):
                if stale.name not in pngs and PLOT_PATTERN.fullmatch(stale.name):
                    stale.unlink()
        for name, text in texts.items():
            atomic_write_text(out_dir / name, text)
            written.append(out_dir / name)
        return written


def build_leaderboard(entries: Sequence[Entry], metric: str = DEFAULT_METRIC,
                      runs_dir: Path | None = None) -> Leaderboard:
    """Rank entries by ``metric`` within each eval set (same eval fingerprint and decoding) and compare them; with
    ``runs_dir``, its arena votes (arena/votes.jsonl) add each row's arena rating."""
    board = build_board(entries, metric)
    board = Leaderboard(**{f.name: getattr(board, f.name) for f in fields(board)})
    arena = load_ratings(Path(runs_dir)) if runs_dir is not None else None
    if arena is not None:
        board.arena, board.arena_root = arena[0], Path(runs_dir)
        board.notes.append(arena_summary(*arena))
    return board
