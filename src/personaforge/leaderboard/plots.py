"""The leaderboard's plots: matplotlib (Agg, no pyplot), PNG bytes under the names display.py gives them."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from personaforge.leaderboard.collect import Entry
from personaforge.leaderboard.display import bars_name, slug
from personaforge.leaderboard.rank import Board

if TYPE_CHECKING:
    from matplotlib.figure import Figure  # matplotlib itself is imported when a plot is drawn
_TUNED, _BASELINE = "#3b6ea8", "#a0a0a0"


def _figure(width: float, height: float) -> Figure:
    # A Figure with its own Agg canvas: no pyplot, so no global backend switch and no figure registry to leak.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No timestamp metadata, so the same leaderboard gives byte-identical PNGs.
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def bars_png(board: Board, set_index: int) -> bytes | None:
    """Horizontal bars of the ranking metric, best on top, 95% bootstrap intervals as error bars."""
    eval_set = board.eval_sets[set_index - 1]
    rows = [row for row in eval_set.rows if row.value is not None]
    if not rows:
        return None
    fig = _figure(8, 0.45 * len(rows) + 1.4)
    ax = fig.add_subplot()
    values = [row.value for row in rows]
    # A percentile interval of a skewed corpus metric need not contain the point: never draw a negative bar.
    low = [max(0.0, row.value - row.ci[0]) if row.ci else 0.0 for row in rows]
    high = [max(0.0, row.ci[1] - row.value) if row.ci else 0.0 for row in rows]
    colors = [_BASELINE if row.entry.baseline else _TUNED for row in rows]
    positions = list(range(len(rows)))
    ax.barh(positions, values, xerr=[low, high], color=colors, capsize=3, error_kw={"elinewidth": 1})
    ax.set_yticks(positions, [_short(row.entry.label) for row in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"{board.metric} (error bars: 95% bootstrap CI; grey: untuned baseline)")
    ax.set_title(f"{board.metric}: eval set {eval_set.index}")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def loss_png(entries: list[Entry]) -> bytes | None:
    """Training (solid) and eval (dashed, dots) loss against step, one colour per run."""
    histories = []
    seen = set()
    for entry in entries:
        history = entry.train.get("loss_history")
        key = entry.run_dir.resolve()
        if key in seen or not isinstance(history, list) or not history:
            continue
        seen.add(key)
        histories.append((entry.run, history))
    if not histories:
        return None
    fig = _figure(8, 4.5)
    ax = fig.add_subplot()
    for number, (run, history) in enumerate(histories):
        color = f"C{number % 10}"
        for key, style in (("loss", {"linestyle": "-"}), ("eval_loss", {"linestyle": "--", "marker": "o"})):
            points = [(p["step"], p[key]) for p in history
                      if isinstance(p, dict) and isinstance(p.get("step"), (int, float))
                      and isinstance(p.get(key), (int, float))]
            if points:
                xs, ys = zip(*points)
                # One legend entry per run: the title says which line style is which.
                label = _short(run, 40) if key == "loss" else "_nolegend_"
                ax.plot(xs, ys, color=color, label=label, **style)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Training loss (solid) and eval loss (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _png(fig)


def confusion_png(entry: Entry) -> bytes | None:
    """The attribution classifier's confusion matrix: rows = persona asked, columns = persona attributed."""
    confusion = entry.attribution.get("confusion")
    if not isinstance(confusion, dict):
        return None
    labels, matrix = confusion.get("labels"), confusion.get("matrix")
    if not labels or not matrix or len(matrix) != len(labels) or any(len(r) != len(labels) for r in matrix):
        return None
    size = 1.0 + 0.9 * len(labels)
    fig = _figure(size + 0.8, size)
    ax = fig.add_subplot()
    # No colour bar: every cell carries its count, and a colour bar doubles the drawing time.
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            shown = str(int(count)) if float(count).is_integer() else f"{count:.2f}"  # counts or shares
            ax.text(j, i, shown, ha="center", va="center", color="white" if count > peak / 2 else "black")
    ticks = list(range(len(labels)))
    ax.set_xticks(ticks, [_short(str(x), 18) for x in labels], rotation=30, ha="right")
    ax.set_yticks(ticks, [_short(str(x), 18) for x in labels])
    ax.set_xlabel("attributed persona")
    ax.set_ylabel("persona asked")
    accuracy = entry.attribution.get("accuracy")
    suffix = f" (accuracy {accuracy:.2f})" if isinstance(accuracy, (int, float)) else ""
    ax.set_title(_short(entry.label, 40) + suffix, fontsize="medium")
    return _png(fig)


def render_plots(board: Board) -> dict[str, bytes]:
    """File name → PNG bytes, in report order."""
    plots: dict[str, bytes] = {}
    for eval_set in board.eval_sets:
        png = bars_png(board, eval_set.index)
        if png:
            plots[bars_name(board.metric, eval_set.index)] = png
    entries = [row.entry for row in board.rows()]
    png = loss_png(entries)
    if png:
        plots["training-loss.png"] = png
    for entry in entries:
        png = confusion_png(entry)
        if png:
            name, number = f"confusion-{slug(entry.label)}.png", 2
            while name in plots:  # two labels can slug alike ("a b" and "a-b")
                name, number = f"confusion-{slug(entry.label)}-{number}.png", number + 1
            plots[name] = png
    return plots
