"""leaderboard.md (and what `persona leaderboard` prints by default)."""

from __future__ import annotations

from personaforge.leaderboard.display import (SEARCHED_NOTE, TESTS_TITLE, delta_cells, delta_header, family_cells,
                                              family_header, searched_shown, table_cells, table_header, tests_cells,
                                              tests_header)
from personaforge.leaderboard.rank import Board
from personaforge.leaderboard.showcase import showcase_markdown


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)]


def render(board: Board) -> str:
    out = [f"# Leaderboard: {board.metric}", ""]
    if board.definition:
        out += [f"{board.metric}: {board.definition}", ""]
    out += [f"- {note}" for note in board.notes] + ([""] if board.notes else [])
    for eval_set in board.eval_sets:
        out += [f"## {eval_set.title}", ""]
        out += _md_table(table_header(board), [table_cells(board, row) for row in eval_set.rows])
        out.append("")
        if eval_set.verdict:
            out += [f"Verdict: {eval_set.verdict.text}.", ""]
        elif eval_set.note:
            out += [f"Verdict: none ({eval_set.note}).", ""]
        if eval_set.showcase:
            out += ["### Answers side by side", "", *showcase_markdown(eval_set.showcase)]
    if board.families:
        out += ["## Base vs instruct (fine-tuned, best run of each)", ""]
        out += _md_table(family_header(board), [family_cells(c) for c in board.families]) + [""]
    if board.baseline_deltas:
        out += ["## Fine-tuned vs untuned baseline", ""]
        out += _md_table(delta_header(board), [delta_cells(d) for d in board.baseline_deltas]) + [""]
    if board.baseline_tests:
        out += [f"## {TESTS_TITLE}", ""]
        out += _md_table(tests_header(board), [tests_cells(board, d) for d in board.baseline_tests]) + [""]
        if searched_shown(board):
            out += [SEARCHED_NOTE, ""]
    return "\n".join(out)
