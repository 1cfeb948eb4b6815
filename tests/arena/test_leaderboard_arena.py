"""Arena votes in `persona leaderboard` (every format) and `persona arena export`."""

from __future__ import annotations

import csv
import io
import json

from personaforge.arena import REFERENCE, VOTES_FILE, VoteLog
from personaforge.leaderboard import build_leaderboard, collect
from tests.conftest import assert_user_error, run_persona

GOOD, BAD, BASE = "run-good/eval/eval", "run-bad/eval/eval", "run-good/eval/eval-baseline"


def cast(runs) -> None:
    log = VoteLog(runs / VOTES_FILE)
    for i in range(6):
        log.append({"left": GOOD, "right": BAD, "question_id": f"q{i % 4 + 1}", "vote": "left"})
        log.append({"left": BASE, "right": GOOD, "question_id": f"q{i % 4 + 1}", "vote": "right"})
    for vote in ("tie", "right", "left", "right"):
        log.append({"left": GOOD, "right": REFERENCE, "question_id": "q1", "vote": vote})


def test_no_votes_no_arena_columns(runs):
    board = build_leaderboard(collect(runs), runs_dir=runs)
    assert board.arena is None and "arena" not in board.to_markdown()


def test_leaderboard_rows_carry_arena_ratings_intervals_and_the_share_held_against_the_real_answer(runs):
    cast(runs)
    board = build_leaderboard(collect(runs), runs_dir=runs)
    md = board.to_markdown()
    header = next(line for line in md.splitlines() if line.startswith("| #"))
    assert "arena (95% CI)" in header and "arena votes" in header and "≥ real answer (95% CI)" in header
    good_row = next(line for line in md.splitlines() if line.startswith("| ") and "| run-good |" in line)
    cells = [c.strip() for c in good_row.split("|")]
    assert "16" in cells and "50% [" in good_row and "of 4" in good_row  # 1 win + 1 tie of 4 against the real answer
    assert "arena: 16 blind votes" in md and "side bias" in md
    data = json.loads(board.to_json())
    rows = {r["label"]: r for r in data["eval_sets"][0]["rows"]}
    assert rows["run-good"]["arena"]["rating"] > rows["run-bad"]["arena"]["rating"]
    assert rows["run-good"]["arena"]["reference_share"] == 0.5
    assert data["arena"]["votes"] == 16 and data["arena"]["side_bias"]["decisive_votes"] == 15
    table = list(csv.DictReader(io.StringIO(board.to_csv())))
    good = next(r for r in table if r["run"] == "run-good" and r["eval"] == "eval")
    assert good["arena_votes"] == "16" and float(good["arena_rating"]) > 1000
    assert "arena (95% CI)" in board.to_html()


def test_arena_export_gives_votes_competitors_and_ratings(runs):
    cast(runs)
    result = run_persona("arena", "export", "--runs", str(runs))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert len(data["votes"]) == 16 and data["votes"][0]["left"] == GOOD and data["votes"][0]["at"]
    assert {c["key"] for c in data["competitors"]} == {GOOD, BAD, BASE, REFERENCE}
    ranked = [r["key"] for r in data["ratings"]["ratings"]]
    assert ranked.index(GOOD) < ranked.index(BAD) and ranked.index(GOOD) < ranked.index(BASE)
    assert next(r for r in data["ratings"]["ratings"] if r["key"] == GOOD)["label"] == "run-good"


def test_arena_export_of_a_missing_folder_is_a_user_error(tmp_path):
    assert_user_error(run_persona("arena", "export", "--runs", str(tmp_path / "nope")), "--runs")
