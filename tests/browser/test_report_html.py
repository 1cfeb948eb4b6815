"""report.html read in a real browser: the images load, the tables render, the answers are there."""

from __future__ import annotations

from pathlib import Path

from personaforge.leaderboard import build_leaderboard, collect
from tests.test_leaderboard import LLAMA_I, LLAMA_I_BASELINE, scores, write_eval, write_run


def _report(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    tuned = write_run(runs, LLAMA_I, "meta-llama/Meta-Llama-3-8B-Instruct")
    write_eval(tuned, "eval", scores(0.345, 1), model="meta-llama/Meta-Llama-3-8B-Instruct")
    write_eval(tuned, "eval-baseline", scores(0.250, 2), model="meta-llama/Meta-Llama-3-8B-Instruct")
    write_eval(write_run(runs, "2026-11-01_11-00-00-llama3-8b", "meta-llama/Meta-Llama-3-8B"), "eval",
               scores(0.300, 3), model="meta-llama/Meta-Llama-3-8B")
    build_leaderboard(collect(runs)).write_all(tmp_path / "board")
    return tmp_path / "board" / "report.html"


def test_report_renders_with_its_images_tables_and_answers(page, tmp_path):
    report = _report(tmp_path)
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])")
    assert len(images) >= 3  # bars, the loss curve, confusion matrices
    assert all(complete and width > 0 for _, complete, width in images), images
    # The leaderboard table: one row per evaluation, the fine-tuned run ranked first.
    first = page.locator("table").first
    assert first.locator("tbody tr").count() == 3
    assert LLAMA_I in first.locator("tbody tr").first.inner_text()
    # Answers side by side, per persona, shown (not just present in the source).
    answers = page.locator("table.answers")
    assert answers.count() == 3 and answers.first.is_visible()
    header = [h.strip() for h in answers.first.locator("th").all_inner_texts()]
    assert header == ["", "question", "real answer", "fine-tuned", "baseline"]
    row = answers.first.locator("tbody tr").first
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "best" and cells[1].startswith("question ") and cells[2].startswith("the lamp turns")
    assert "bread wants patience" in cells[4] and "rouge1" in cells[4]
    assert LLAMA_I_BASELINE in page.inner_text("body")
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert (tmp_path / "report.png").stat().st_size > 10_000
