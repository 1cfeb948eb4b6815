"""The studio's arena tab: the JSON API, its security, and a full blind vote flow in a real browser, keyboard only."""

from __future__ import annotations

import json

import pytest

from personaforge.arena import VOTES_FILE
from tests.arena.conftest import write_runs
from tests.studio.conftest import http

GOOD, BAD, BASE = "run-good/eval/eval", "run-bad/eval/eval", "run-good/eval/eval-baseline"


def serve_arena(runs, require_token: bool = False, dataset=None):
    from personaforge.studio.app import Background, create_app
    from personaforge.studio.arena import Arena
    from personaforge.studio.security import Security
    from personaforge.studio.state import Studio

    security = Security(host="192.0.2.1" if require_token else "127.0.0.1")
    studio = Studio.open(dataset.folder) if dataset is not None else None
    app = create_app(studio, security, Arena(runs))
    return Background(app, host="127.0.0.1", port=0, security=security), security


@pytest.fixture
def runs(tmp_path):
    return write_runs(tmp_path / "runs")


@pytest.fixture
def arena_url(runs):
    background, _ = serve_arena(runs)
    with background as url:
        yield url.rstrip("/")


def votes(runs) -> list[dict]:
    path = runs / VOTES_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_next_is_blind_and_a_vote_records_the_sides_and_reveals_them(arena_url, runs):
    matchup = http("GET", f"{arena_url}/api/arena/next?first={GOOD}&second={BAD}").json()
    assert set(matchup) == {"matchup", "persona", "question", "question_id", "left", "right"}
    assert "run-" not in json.dumps(matchup)
    result = http("POST", f"{arena_url}/api/arena/vote", {"matchup": matchup["matchup"], "vote": "left"}).json()
    winner = GOOD if matchup["left"].startswith("good") else BAD
    assert [(v["left"], v["vote"], v["question_id"]) for v in votes(runs)] == [(winner, "left", matchup["question_id"])]
    assert result["left_label"] == ("run-good" if winner == GOOD else "run-bad") and result["votes"] == 1
    # the same matchup cannot be voted twice, and a bad choice or matchup is refused
    again = http("POST", f"{arena_url}/api/arena/vote", {"matchup": matchup["matchup"], "vote": "right"})
    assert again.status == 404 and "no such matchup" in again.json()["error"]
    fresh = http("GET", f"{arena_url}/api/arena/next").json()["matchup"]
    assert http("POST", f"{arena_url}/api/arena/vote", {"matchup": fresh, "vote": "maybe"}).status == 400
    assert http("GET", f"{arena_url}/api/arena/vote?matchup={fresh}&vote=left").status == 405
    assert http("GET", f"{arena_url}/api/arena/next?first=nobody").status == 400
    assert len(votes(runs)) == 1


def test_the_arena_needs_the_token_when_not_on_loopback(runs):
    background, security = serve_arena(runs, require_token=True)
    with background as url:
        base = url.split("?")[0].rstrip("/")
        assert http("GET", f"{base}/api/arena/next").status == 403
        ok = http("GET", f"{base}/api/arena/next", headers={"Authorization": f"Bearer {security.token}"})
        assert ok.status == 200
        matchup = ok.json()["matchup"]
        assert http("POST", f"{base}/api/arena/vote", {"matchup": matchup, "vote": "tie"}).status == 403
        cross = http("POST", f"{base}/api/arena/vote", {"matchup": matchup, "vote": "tie"},
                     headers={"Authorization": f"Bearer {security.token}", "Origin": "http://evil.example"})
        assert cross.status == 403 and votes(runs) == []


def test_review_and_arena_link_to_each_other(runs, dataset):
    background, _ = serve_arena(runs, dataset=dataset)
    with background as url:
        base = url.rstrip("/")
        assert 'href="/arena"' in http("GET", base + "/").body.decode()
        assert 'href="/"' in http("GET", base + "/arena").body.decode()


def wait_matchup(page, previous: str | None = None) -> str:
    """The id of the matchup shown once it is another than ``previous``. (Selectors only: the page's CSP allows no
    eval, which wait_for_function would need.)"""
    selector = "#matchup[data-matchup]" + (f':not([data-matchup="{previous}"])' if previous else "")
    return page.wait_for_selector(selector, timeout=10000).get_attribute("data-matchup")


def test_a_full_blind_vote_flow_with_the_keyboard_moves_the_ratings(page, arena_url, runs):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{arena_url}/arena")
    current = wait_matchup(page)
    assert "accept" not in page.locator("#shortcuts").inner_text() and "tie" in page.locator("#shortcuts").inner_text()
    page.select_option("#filter-first", GOOD)
    current = wait_matchup(page, current)
    page.select_option("#filter-second", BAD)
    current = wait_matchup(page, current)
    page.locator("body").focus()
    planted = []
    for i in range(6):  # the planted votes: run-good's answer is better every time, whichever side it is on
        assert page.locator("#who-left").inner_text() == "hidden" == page.locator("#who-right").inner_text()
        left = page.locator("#answer-left").inner_text()
        good_left = left.startswith("good answer")
        page.keyboard.press("a" if good_left else ("b" if i % 2 else "ArrowRight"))
        page.wait_for_selector("#matchup[data-voted]")
        assert page.locator("#who-left").inner_text() == ("run-good" if good_left else "run-bad")
        assert page.locator("#side-" + ("left" if good_left else "right")).get_attribute("class") == "side won"
        planted.append("left" if good_left else "right")
        page.keyboard.press("n" if i % 2 else "Enter")
        current = wait_matchup(page, current)
    page.wait_for_selector(f'#ratings-table tbody tr:first-child[data-key="{GOOD}"]')
    rows = page.locator("#ratings-table tbody tr")
    assert [rows.nth(i).get_attribute("data-key") for i in range(rows.count())] == [GOOD, BAD]
    # the real answers too: tie, then both bad; the side-bias line counts only decisive votes
    page.select_option("#filter-second", "reference")
    current = wait_matchup(page, current)
    page.locator("body").focus()
    page.keyboard.press("t")
    page.wait_for_selector("#matchup[data-voted=tie]")
    page.keyboard.press("n")
    current = wait_matchup(page, current)
    page.keyboard.press("x")
    page.wait_for_selector("#matchup[data-voted=both_bad]")
    page.wait_for_selector('#side-bias:text-matches("^8 votes")')
    assert "of 6 decisive votes" in page.locator("#side-bias").inner_text()
    recorded = votes(runs)
    assert [v["vote"] for v in recorded] == planted + ["tie", "both_bad"]
    for vote in recorded[:6]:
        assert vote[vote["vote"]] == GOOD and {vote["left"], vote["right"]} == {GOOD, BAD}
    assert {recorded[6]["left"], recorded[6]["right"]} == {GOOD, "reference"}
    good = page.locator(f'#ratings-table tr[data-key="{GOOD}"] td').all_inner_texts()
    assert good[1] == "8" and good[2].startswith("100% [")  # tied with the real answer twice of 2
    assert dialogs == []


def test_answer_text_with_markup_shows_as_text(page, arena_url):
    page.goto(f"{arena_url}/arena")
    wait_matchup(page)
    page.select_option("#filter-persona", "Ben Ortiz")
    page.select_option("#filter-second", "reference")
    for _ in range(8):
        current = wait_matchup(page)
        texts = page.locator(".side .answer").all_inner_texts()
        if any("<b>before</b>" in t for t in texts):
            break
        page.locator("body").focus()
        page.keyboard.press("n")
        wait_matchup(page, current)
    assert any("<b>before</b>" in t for t in page.locator(".side .answer").all_inner_texts())
    assert page.locator("#matchup b").count() == 0


def test_persona_studio_runs_alone_is_the_arena_and_a_folder_without_runs_is_an_error(runs, tmp_path):
    from tests.conftest import assert_user_error, run_persona
    from tests.studio.test_cli import studio_process

    with studio_process("--runs", str(runs), "--port", "0") as (url, process):
        home = http("GET", url)
        assert home.status == 303 and home.headers["location"] == "/arena"
        assert "personaforge arena" in http("GET", url + "arena").body.decode()
    (tmp_path / "empty").mkdir()
    assert_user_error(run_persona("studio", "--runs", str(tmp_path / "empty"), "--port", "0"), "--runs",
                      "persona eval")
