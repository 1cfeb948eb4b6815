"""report.html: the static, self-contained HTML report.

The report embeds every plot as a base64 PNG ``data:`` URI, so report.html is one file that can be
moved, mailed or attached without its plots/ folder (which ``write_all`` writes as well, for other uses).
"""

from __future__ import annotations

import base64
import html

from personaforge.leaderboard.display import (SEARCHED_NOTE, TESTS_TITLE, bars_name, delta_cells, delta_header,
                                              family_cells, family_header, searched_shown, table_cells, table_header,
                                              tests_cells, tests_header)
from personaforge.leaderboard.rank import Board
from personaforge.leaderboard.showcase import Showcase



_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f0f0f0; }
tr.baseline td { color: #666; }
.verdict { background: #f7f7e8; padding: 0.5rem; border-left: 4px solid #c9b400; }
.notes li, p.note { color: #444; }
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


def render_html(board: Board, plots: dict[str, bytes]) -> str:
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
        bars = bars_name(board.metric, eval_set.index)
        out.append(_img(plots, bars, f"{board.metric} by run, eval set {eval_set.index}"))
        if eval_set.showcase:
            out.append(_answers_html(eval_set.showcase))
    if board.families:
        out.append("<h2>Base vs instruct (fine-tuned, best run of each)</h2>")
        out.append(_table(family_header(board), [family_cells(c) for c in board.families]))
    if board.baseline_deltas:
        out.append("<h2>Fine-tuned vs untuned baseline</h2>")
        out.append(_table(delta_header(board), [delta_cells(d) for d in board.baseline_deltas]))
    if board.baseline_tests:
        out.append(f"<h2>{TESTS_TITLE}</h2>")
        out.append(_table(tests_header(board), [tests_cells(board, d) for d in board.baseline_tests]))
        if searched_shown(board):
            out.append(f"<p class=\"note\">{esc(SEARCHED_NOTE)}</p>")
    if "training-loss.png" in plots:
        out += ["<h2>Training loss</h2>", _img(plots, "training-loss.png", "training and eval loss by step")]
    confusions = [name for name in plots if name.startswith("confusion-")]
    if confusions:
        out.append("<h2>Persona attribution: confusion matrices</h2><div class=\"grid\">")
        out += [f"<figure>{_img(plots, name, name.removesuffix('.png'))}</figure>" for name in confusions]
        out.append("</div>")
    out.append("</body></html>\n")
    return "\n".join(out)
