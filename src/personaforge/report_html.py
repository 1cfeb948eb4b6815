"""The leaderboard's plots (matplotlib, Agg, PNG bytes) and its static, self-contained HTML report.

The report embeds every plot as a base64 PNG ``data:`` URI, so report.html is one file that can be
moved, mailed or attached without its plots/ folder (which ``write_all`` writes as well, for other uses).
"""

from __future__ import annotations

import base64
import html
import io
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from personaforge.leaderboard import Entry, Leaderboard
    from personaforge.showcase import Showcase

# Every file name render_plots can produce (write_all removes stale files of these shapes only).
PLOT_PATTERN = re.compile(r"(bars-.+|training-loss|confusion-.+)\.png")
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


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def bars_png(board: Leaderboard, set_index: int) -> bytes | None:
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


def render_plots(board: Leaderboard) -> dict[str, bytes]:
    """File name → PNG bytes, in report order."""
    plots: dict[str, bytes] = {}
    for eval_set in board.eval_sets:
        png = bars_png(board, eval_set.index)
        if png:
            plots[f"bars-{_slug(board.metric)}-set{eval_set.index}.png"] = png
    entries = [row.entry for row in board.rows()]
    png = loss_png(entries)
    if png:
        plots["training-loss.png"] = png
    for entry in entries:
        png = confusion_png(entry)
        if png:
            name, number = f"confusion-{_slug(entry.label)}.png", 2
            while name in plots:  # two labels can slug alike ("a b" and "a-b")
                name, number = f"confusion-{_slug(entry.label)}-{number}.png", number + 1
            plots[name] = png
    return plots


# ------------------------------------------------------------------------------------------- HTML
_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
tr.baseline td { color: #666; }
.verdict { background: #f7f7e8; padding: 0.5rem; border-left: 4px solid #c9b400; }
.notes li { color: #444; }
img { max-width: 100%; margin: 0.5rem 0; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; }
.grid figure { margin: 0; }
table.answers td { vertical-align: top; max-width: 28rem; white-space: normal; }
table.answers td.pick { font-weight: bold; white-space: nowrap; }
table.answers .score { display: block; color: #555; font-size: 0.85em; margin-top: 0.3rem; }
"""


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{classes[index]}"' if classes and classes[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(plots: dict[str, bytes], name: str, alt: str) -> str:
    if name not in plots:
        return ""
    data = base64.b64encode(plots[name]).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _answers_html(showcase: Showcase) -> str:
    """Per persona: question, the real answer and each model's answer side by side, with the per-sample scores."""
    esc = html.escape
    against = f" and its untuned baseline ({showcase.baseline})" if showcase.baseline else ""
    out = ["<h3>Answers side by side</h3>",
           f"<p>Answers of {esc(showcase.run)}{esc(against)}, per persona: the best, median and worst sample by"
           f" {esc(showcase.metric)}.</p>"]
    header = ["", "question", "real answer", "fine-tuned"] + (["baseline"] if showcase.baseline else [])

    def answer(text: str | None, score: float | None) -> str:
        shown = esc(text) if text else "<i>(empty answer)</i>"
        value = "—" if score is None else f"{score:.3f}"
        return f"{shown}<span class=\"score\">{esc(showcase.metric)} {value}</span>"

    for persona, samples in showcase.personas.items():
        out.append(f"<h4>{esc(persona)}</h4>")
        rows = []
        for s in samples:
            cells = [f'<td class="pick">{esc(s.pick)}</td>', f"<td>{esc(s.question)}</td>", f"<td>{esc(s.real)}</td>",
                     f"<td>{answer(s.answer, s.score)}</td>"]
            if showcase.baseline:
                cells.append(f"<td>{answer(s.baseline_answer, s.baseline_score)}</td>")
            rows.append(f'<tr data-sample="{esc(s.id)}">' + "".join(cells) + "</tr>")
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        out.append(f'<table class="answers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
    return "\n".join(out)


def render_html(board: Leaderboard, plots: dict[str, bytes]) -> str:
    from personaforge.leaderboard import (
        delta_cells,
        delta_header,
        family_cells,
        family_header,
        table_cells,
        table_header,
    )

    esc = html.escape
    title = f"personaforge leaderboard: {board.metric}"
    out = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{esc(title)}</h1>"]
    if board.definition:
        out.append(f"<p><b>{esc(board.metric)}</b>: {esc(board.definition)}</p>")
    if board.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in board.notes) + "</ul>")
    for eval_set in board.eval_sets:
        out.append(f"<h2>{esc(eval_set.title)}</h2>")
        classes = ["baseline" if row.entry.baseline else "" for row in eval_set.rows]
        out.append(_table(table_header(board), [table_cells(board, row) for row in eval_set.rows], classes))
        if eval_set.verdict:
            out.append(f'<p class="verdict">Verdict: {esc(eval_set.verdict.text)}.</p>')
        elif eval_set.note:
            out.append(f'<p class="verdict">Verdict: none ({esc(eval_set.note)}).</p>')
        bars = f"bars-{_slug(board.metric)}-set{eval_set.index}.png"
        out.append(_img(plots, bars, f"{board.metric} by run, eval set {eval_set.index}"))
        if eval_set.showcase:
            out.append(_answers_html(eval_set.showcase))
    if board.families:
        out.append("<h2>Base vs instruct (fine-tuned, best run of each)</h2>")
        out.append(_table(family_header(board), [family_cells(c) for c in board.families]))
    if board.baseline_deltas:
        out.append("<h2>Fine-tuned vs untuned baseline</h2>")
        out.append(_table(delta_header(board), [delta_cells(d) for d in board.baseline_deltas]))
    if "training-loss.png" in plots:
        out += ["<h2>Training loss</h2>", _img(plots, "training-loss.png", "training and eval loss by step")]
    confusions = [name for name in plots if name.startswith("confusion-")]
    if confusions:
        out.append("<h2>Persona attribution: confusion matrices</h2><div class=\"grid\">")
        out += [f"<figure>{_img(plots, name, name.removesuffix('.png'))}</figure>" for name in confusions]
        out.append("</div>")
    out.append("</body></html>\n")
    return "\n".join(out)
