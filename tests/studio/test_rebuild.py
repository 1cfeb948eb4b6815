"""Review in the browser, then rebuild: the build applies the decisions; after a transcript edit a decision whose
record changed is shown as stale (old and new text), never applied."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import quote

from personaforge.config import DataConfig
from personaforge.dataset.build import build_dataset
from personaforge.dataset.review import ReviewLog, default_review_path
from personaforge.studio.app import Background, create_app
from personaforge.studio.security import Security
from personaforge.studio.state import Studio
from tests.conftest import run_persona


def config_for(project, **extra) -> DataConfig:
    return DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)],
                      out=str(project.root / "out"), eval_fraction=0.3, **extra)


def records(folder: Path, name: str) -> dict[str, dict]:
    return {r["id"]: r for r in (json.loads(line) for line in (folder / name).read_text().splitlines())}


def studio_url(folder: Path) -> Background:
    security = Security()
    return Background(create_app(Studio.open(folder), security), security=security)


def open_record(page, url: str, record_id: str) -> None:
    page.goto(f"{url}?sort=file#{quote(record_id, safe='')}")
    page.wait_for_selector(f'#record[data-id="{record_id}"]', timeout=10000)


def wait_for_lines(path: Path, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {count} decisions")


def test_a_rebuild_applies_the_decisions_made_in_the_browser(page, project):
    config = config_for(project)
    built = build_dataset(config)
    out = Path(config.out)
    candidates = records(out, "candidates.jsonl")
    assert len(candidates) == len(built.train) + len(built.eval)
    rejected = next(r["id"] for r in built.train if r["type"] == "extracted")
    edited = built.eval[0]["id"]
    accepted = next(r["id"] for r in built.train if r["generator"] != "transcript")
    review = default_review_path(out)
    with studio_url(out) as url:
        open_record(page, url, rejected)
        page.keyboard.press("r")
        page.keyboard.type("not what she said")
        page.keyboard.press("Enter")
        wait_for_lines(review, 1)
        open_record(page, url, edited)
        page.keyboard.press("e")
        page.keyboard.press("Control+A")
        page.keyboard.type("The lamp turns, and I count.")
        page.keyboard.press("Control+Enter")
        wait_for_lines(review, 2)
        open_record(page, url, accepted)
        page.keyboard.press("a")
        wait_for_lines(review, 3)
    assert review.parent == out.parent  # beside the dataset, not inside it
    build_dataset(config)
    train, evaluation = records(out, "train.jsonl"), records(out, "eval.jsonl")
    assert rejected not in train and rejected not in evaluation
    assert evaluation[edited]["completion"] == " The lamp turns, and I count."  # an edited eval record stays in eval
    assert evaluation[edited]["messages"][-1]["content"] == "The lamp turns, and I count."
    assert evaluation[edited]["source"]["review"] == "edited"
    assert train[accepted]["source"]["review"] == "accepted"
    assert len(records(out, "candidates.jsonl")) == len(candidates)  # the studio still sees every record
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["review"]["totals"]["applied"] == 3 and card["review"]["totals"]["stale"] == 0
    assert card["review"]["totals"]["rejected"] == 1 and card["review"]["totals"]["edited"] == 1
    assert "## Review" in (out / "dataset_card.md").read_text()
    # with require_review only the accepted synthesized record of all the written ones is kept
    strict = build_dataset(config_for(project, require_review=True), write=False)
    written = [r["id"] for r in strict.train + strict.eval if r["generator"] != "transcript"]
    assert written == [accepted]
    assert strict.card["review"]["totals"]["dropped_unreviewed"] > 0


def test_after_a_transcript_edit_a_changed_record_shows_its_stale_decision(page, project):
    config = config_for(project)
    built = build_dataset(config)
    out = Path(config.out)
    everything = built.train + built.eval
    target = next(r for r in everything if r["type"] == "extracted" and "wick" in r["completion"])
    other = next(r for r in built.train if r["type"] == "extracted" and r["id"] != target["id"]
                 and r["segment"] != target["segment"])
    log = ReviewLog.load(default_review_path(out))
    log.decide(target, "accept")
    log.decide(other, "reject", reason="duplicate")
    transcript = project.transcripts / "one.txt"
    transcript.write_text(transcript.read_text().replace("never once let the wick go black",
                                                         "never once let the lamp go dark"), encoding="utf-8")
    result = build_dataset(config)
    assert any("stale" in w and target["id"] in w for w in result.card["warnings"])
    rebuilt = {**records(out, "train.jsonl"), **records(out, "eval.jsonl")}
    assert "lamp go dark" in rebuilt[target["id"]]["completion"] and "review" not in rebuilt[target["id"]]["source"]
    assert other["id"] not in rebuilt  # an unchanged record keeps its decision
    card = json.loads((out / "dataset_card.json").read_text())
    assert card["review"]["stale"][0]["id"] == target["id"]
    with studio_url(out) as url:
        open_record(page, url, target["id"])
        banner = page.locator("#stale-banner")
        assert banner.is_visible()
        text = banner.inner_text()
        assert "Stale: accepted" in text and "wick go black" in text and "lamp go dark" in text
        assert page.locator("#stale-count").inner_text() == "1"
        page.keyboard.press("a")  # decided again on the new text: no longer stale
        page.wait_for_selector("#notice.ok")
        page.goto(url + "stale")
        assert "None." in page.locator("#stale").inner_text()
    status = run_persona("data", "review-status", "--data", str(out))
    assert status.returncode == 0 and "0 stale" in status.stdout

