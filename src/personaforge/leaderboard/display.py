"""Display strings the renderers share: numbers, table rows (markdown and HTML show the same cells) and plot file
names (the plots are written under them and the HTML report embeds them by name)."""

from __future__ import annotations

import re

from personaforge.arena.ratings import ARENA_HEADER, arena_cells
from personaforge.leaderboard.collect import as_number
from personaforge.leaderboard.rank import BaselineDelta, Board, FamilyComparison, Paired, Row, format_p


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def table_header(board: Board) -> list[str]:
    metric, *others = board.columns
    return ["#", "run", "model", "size", "type", "tag", f"{metric} (95% CI)", *others, "attribution acc",
            *(ARENA_HEADER if board.arena else []), "train time", "baseline"]


def table_cells(board: Board, row: Row) -> list[str]:
    """One leaderboard row as display strings (shared by markdown and HTML)."""
    entry = row.entry
    others = board.columns[1:]
    main = fmt(row.value) + (f" {fmt_ci(row.ci)}" if row.ci else "")
    return [str(row.rank) if row.rank is not None else "—", entry.label, entry.model, entry.size or "—",
            entry.kind, entry.tag or "", main, *(fmt(entry.metrics.get(m)) for m in others),
            fmt(as_number(entry.attribution.get("accuracy"))),
            *(arena_cells(board.arena_rating(entry)) if board.arena else []), fmt_duration(entry.wall_s),
            "yes" if entry.baseline else ""]


def family_header(board: Board) -> list[str]:
    return ["eval set", "family", "size", f"base ({board.metric})", f"instruct ({board.metric})", "difference"]


def family_cells(comparison: FamilyComparison) -> list[str]:
    c = comparison
    return [str(c.eval_set), c.family, c.size or "—", f"{fmt(c.base_value)} ({c.base})",
            f"{fmt(c.instruct_value)} ({c.instruct})", c.text]


def delta_header(board: Board) -> list[str]:
    return ["eval set", "run", board.metric, "baseline", "Δ", "Δ %", "95% CIs overlap", "paired test"]


def delta_cells(delta: BaselineDelta) -> list[str]:
    d = delta
    overlap = "—" if d.intervals_overlap is None else ("yes" if d.intervals_overlap else "no")
    test = format_p(d.test.p_value) if isinstance(d.test, Paired) else d.test
    pct = "—" if d.delta_pct is None else f"{d.delta_pct:+.1f}%"
    return [str(d.eval_set), d.run, fmt(d.value), fmt(d.baseline_value), f"{d.delta:+.3f}", pct, overlap, test]


TESTS_TITLE = "Fine-tuned vs untuned baseline, every key metric"
# The tests table's scale column: the eval's retrieval_level (what a search of the person's own words finds).
SEARCHED = "own words, searched"
SEARCHED_NOTE = (f"'{SEARCHED}': the person's real training answer that best fits each question, scored the same"
                 " way (retrieval_level): what looking the person up would reach without a model.")


def searched_shown(board: Board) -> bool:
    """The scale column only where some eval measured it (evals before retrieval_level did not)."""
    return any(d.searched is not None for d in board.baseline_tests)


def tests_header(board: Board) -> list[str]:
    return ["eval set", "run", "metric", "fine-tuned", "baseline", "Δ", "paired test", "significantly better",
            *([SEARCHED] if searched_shown(board) else [])]


def tests_cells(board: Board, delta: BaselineDelta) -> list[str]:
    d = delta
    if isinstance(d.test, Paired):
        test, better = format_p(d.test.p_value), "yes" if d.test.significant and d.delta > 0 else "no"
    else:
        test, better = d.test, "—"
    return [str(d.eval_set), d.run, d.metric, fmt(d.value), fmt(d.baseline_value), f"{d.delta:+.3f}", test, better,
            *([fmt(d.searched)] if searched_shown(board) else [])]


# ------------------------------------------------------------------------------------------ plot names
# Every file name render_plots can produce (write_all removes stale files of these shapes only).
PLOT_PATTERN = re.compile(r"(bars-.+|training-loss|confusion-.+)\.png")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def bars_name(metric: str, set_index: int) -> str:
    """The bar chart of one eval set: written by plots, embedded by html_report."""
    return f"bars-{slug(metric)}-set{set_index}.png"
