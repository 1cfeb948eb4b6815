"""Review decisions: the review file (append, torn lines, undo, two writers), matching by id and text hash (stale,
moved, orphaned), and what the build does with them (drop, edit, require_review)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personaforge.config import DataConfig
from personaforge.dataset.review import (ReviewError, ReviewLog, apply_decisions, decision_event, match_decisions,
                                         record_hash, review_path, risk)
from personaforge.prompting import Exchange, chat_messages, plain_completion, plain_prompt

SYSTEM = "You are Ada Bell, a lighthouse keeper."


def record(record_id: str, answer: str, question: str = "What do you do in a storm?", *, type: str = "extracted",
           generator: str = "transcript", split: str = "train", persona: str = "Ada Bell",
           context: tuple[Exchange, ...] = (), source: dict | None = None) -> dict:
    return {"id": record_id, "persona": persona, "type": type, "segment": record_id.split(":", 1)[-1],
            "source": source or {"file": "t.txt", "lines": [3, 4], "question": "transcript"},
            "generator": generator, "split": split,
            "prompt": plain_prompt(SYSTEM, persona, question, context), "completion": plain_completion(answer),
            "messages": chat_messages(SYSTEM, question, context, answer)}


A = record("extracted:one-L3", "I light the lamp and count the seconds between the flashes.")
B = record("extracted:one-L7", "The supply boat comes on Thursdays, weather allowing.", "When does the boat come?")
T = record("transformed:one-L3", A["messages"][-1]["content"], "In a storm, what do you do?", type="transformed",
           generator="template", source={"file": "t.txt", "lines": [3, 4], "question": "rephrased"})
E = record("extracted:one-L9", "My father kept this light for thirty years.", "Who kept it before you?", split="eval")


def test_hash_follows_the_text_not_the_whitespace_or_metadata():
    assert record_hash(A) == record_hash({**A, "source": {"file": "other.txt"}, "generator": "x"})
    spaced = record(A["id"], "I light the lamp  and count\nthe seconds between the flashes. ")
    assert record_hash(spaced) == record_hash(A)
    assert record_hash(record(A["id"], "I light the lamp.")) != record_hash(A)
    assert record_hash(record(A["id"], "I light the lamp and count the seconds between the flashes.", "Why?")) \
        != record_hash(A)
    with_context = record(A["id"], "I light the lamp and count the seconds between the flashes.",
                          context=(Exchange("Hello?", "Hello."),))
    assert record_hash(with_context) != record_hash(A)


def test_review_file_defaults_beside_the_dataset_and_is_configurable():
    assert review_path(DataConfig(out="data/default")) == Path("data/default.review.jsonl")
    assert review_path(DataConfig(out="data/default/")) == Path("data/default.review.jsonl")
    assert review_path(DataConfig(out="x", review_file="reviews/x.jsonl")) == Path("reviews/x.jsonl")


def test_each_decision_is_one_appended_line_and_the_latest_wins(tmp_path):
    path = tmp_path / "d.review.jsonl"
    log = ReviewLog.load(path)
    first = log.decide(A, "reject", reason="cut mid-story")
    assert path.read_text().count("\n") == 1  # written before decide returns
    second = log.decide(A, "accept")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["action"] for line in lines] == ["reject", "accept"]
    assert lines[0]["reason"] == "cut mid-story" and lines[0]["hash"] == record_hash(A)
    assert lines[0]["was"] == {"question": "What do you do in a storm?", "answer": A["completion"].strip()}
    again = ReviewLog.load(path)
    assert again.latest(A["id"]).n == second.n
    assert [d.n for d in again.history(A["id"])] == [first.n, second.n]


def test_undo_takes_back_the_latest_decision_then_the_one_before(tmp_path):
    log = ReviewLog.load(tmp_path / "r.jsonl")
    log.decide(A, "reject")
    log.decide(B, "edit", answer="The boat comes on Thursdays.")
    assert log.undo().id == B["id"]
    assert log.latest(B["id"]) is None
    assert log.undo().id == A["id"]
    with pytest.raises(ReviewError, match="nothing to undo"):
        log.undo()
    reloaded = ReviewLog.load(tmp_path / "r.jsonl")
    assert reloaded.latest(A["id"]) is None and reloaded.latest(B["id"]) is None
    assert reloaded.events == 4 and not reloaded.warnings


def test_a_torn_last_line_is_reported_and_ignored_and_the_next_decision_starts_a_new_line(tmp_path):
    path = tmp_path / "r.jsonl"
    log = ReviewLog.load(path)
    kept = log.decide(A, "accept")
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"n": "x", "id": "extracted:one-L7", "act')  # the process died mid-write
    torn = ReviewLog.load(path)
    assert torn.latest(A["id"]).n == kept.n
    assert torn.latest(B["id"]) is None
    assert len(torn.warnings) == 1 and ":2: the last line is cut off" in torn.warnings[0]
    torn.decide(B, "reject")
    later = ReviewLog.load(path)
    assert later.latest(B["id"]).action == "reject" and later.latest(A["id"]).n == kept.n
    assert len(later.warnings) == 1 and ":2: not a JSON object" in later.warnings[0]


@pytest.mark.parametrize("junk", ["[1, 2]", '{"action": "accept"}', '{"n": "1", "id": "x", "hash": "h", "action": "burn"}',
                                  '{"n": "2", "action": "undo", "undoes": "nope"}', "\x00\x01", "{" * 5000])
def test_hand_edited_junk_lines_are_warnings_never_crashes(tmp_path, junk):
    path = tmp_path / "r.jsonl"
    ReviewLog.load(path).decide(A, "accept")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(junk + "\n")
    log = ReviewLog.load(path)
    assert log.latest(A["id"]).action == "accept"
    assert len(log.warnings) == 1 and "r.jsonl:2:" in log.warnings[0]


def test_two_writers_on_one_file_keep_both_decisions_and_the_later_wins(tmp_path):
    path = tmp_path / "r.jsonl"
    tab_one, tab_two = ReviewLog.load(path), ReviewLog.load(path)
    tab_one.decide(A, "reject")
    tab_two.decide(A, "accept")  # tab_two had not seen the rejection; it reads it before appending
    assert [json.loads(line)["action"] for line in path.read_text().splitlines()] == ["reject", "accept"]
    assert tab_two.latest(A["id"]).action == "accept"
    assert tab_one.refresh() and tab_one.latest(A["id"]).action == "accept"


def test_decisions_are_checked_before_anything_is_written(tmp_path):
    with pytest.raises(ReviewError, match="answer cannot be empty"):
        decision_event(A, "edit", answer="   \n ")
    with pytest.raises(ReviewError, match="question cannot be empty"):
        decision_event(A, "edit", question="", answer="Fine.")
    with pytest.raises(ReviewError, match="needs a new question or answer"):
        decision_event(A, "edit")
    with pytest.raises(ReviewError, match="takes no question or answer"):
        decision_event(A, "accept", answer="sneaky")
    with pytest.raises(ReviewError, match="unknown action"):
        decision_event(A, "delete")
    with pytest.raises(ReviewError, match="too long"):
        decision_event(A, "edit", answer="x" * 30000)
    log = ReviewLog.load(tmp_path / "r.jsonl")
    with pytest.raises(ReviewError):
        log.decide(A, "edit", answer="")
    assert not (tmp_path / "r.jsonl").exists()
    event = decision_event(A, "edit", answer="  I count the flashes.  ")
    assert event["answer"] == "I count the flashes." and event["question"] == "What do you do in a storm?"


def test_a_changed_text_makes_the_decision_stale_a_renumbered_id_follows_its_text_else_orphaned(tmp_path):
    log = ReviewLog.load(tmp_path / "r.jsonl")
    log.decide(A, "reject")
    log.decide(B, "accept")
    log.decide(E, "edit", answer="My father kept it thirty years.")
    changed_a = record(A["id"], "I light the lamp and count the flashes, then I pray.")
    moved_b = {**B, "id": "extracted:one-L8"}  # a line was added above: same text, new id
    matching = match_decisions([changed_a, moved_b], log)
    assert matching[A["id"]].status == "stale"
    assert matching[A["id"]].decision.was.answer == A["completion"].strip()
    assert matching["extracted:one-L8"].status == "accepted"
    assert matching["extracted:one-L8"].moved_from == B["id"]
    assert [d.id for d in matching.orphaned] == [E["id"]]


def test_apply_drops_rejected_replaces_edits_keeps_splits_and_reports_stale(tmp_path):
    log = ReviewLog.load(tmp_path / "r.jsonl")
    log.decide(A, "reject", reason="mixed speakers")
    log.decide(E, "edit", question="Who kept the light before you?", answer="My father, for thirty years.")
    log.decide(T, "accept")
    log.decide(B, "accept")
    changed_b = record(B["id"], "The supply boat comes on Fridays now.", "When does the boat come?")
    reviewed = apply_decisions([A, T, changed_b, E], log)
    train, evaluation = reviewed.split("train"), reviewed.split("eval")
    assert [r["id"] for r in train] == [T["id"], B["id"]]
    assert all("split" not in r for r in train + evaluation)
    edited = evaluation[0]
    assert edited["id"] == E["id"] and edited["type"] == "extracted"
    assert edited["completion"] == " My father, for thirty years."
    assert edited["prompt"] == plain_prompt(SYSTEM, "Ada Bell", "Who kept the light before you?")
    assert edited["messages"][-2:] == [{"role": "user", "content": "Who kept the light before you?"},
                                       {"role": "assistant", "content": "My father, for thirty years."}]
    assert edited["source"]["review"] == "edited" and train[0]["source"]["review"] == "accepted"
    assert "review" not in train[1]["source"]  # stale: not applied, the record stays as built
    assert train[1]["completion"] == " The supply boat comes on Fridays now."
    assert any("1 decision(s) are stale" in w for w in reviewed.warnings)
    section = reviewed.card_section()
    assert section["totals"]["applied"] == 3 and section["totals"]["stale"] == 1
    assert section["by_persona_type"]["Ada Bell"]["extracted"]["rejected"] == 1
    assert section["by_persona_type"]["Ada Bell"]["extracted"]["edited"] == 1
    assert section["stale"][0]["old"]["answer"] == B["completion"].strip()
    assert section["stale"][0]["new"]["answer"] == "The supply boat comes on Fridays now."


def test_require_review_keeps_verbatim_records_and_only_accepted_or_edited_synthesized_ones(tmp_path):
    hypothetical = record("hypothetical:one-L7:boats", "The supply boat comes on Thursdays.", "Tell me about boats.",
                          type="hypothetical", generator="template",
                          source={"file": "t.txt", "lines": [7, 7], "question": "topic", "fit": 0.5})
    negative = record("negative:ada-bell:bread", "Ask Ben about bread.", "How do you bake bread?", type="negative",
                      generator="template", source={"card": "cards.yaml", "question": "deflection"})
    log = ReviewLog.load(tmp_path / "r.jsonl")
    log.decide(T, "accept")
    log.decide(hypothetical, "flag")
    log.decide(negative, "edit", answer="Bread? Ask Ben, I only know lamps.")
    reviewed = apply_decisions([A, T, hypothetical, negative, E], log, require_review=True)
    assert [r["id"] for r in reviewed.split("train")] == [A["id"], T["id"], negative["id"]]
    assert [r["id"] for r in reviewed.split("eval")] == [E["id"]]
    assert reviewed.card_section()["totals"]["dropped_unreviewed"] == 1
    # without require_review the flagged record stays
    assert len(apply_decisions([A, T, hypothetical, negative, E], log).split("train")) == 4


def test_risk_puts_written_questions_with_weak_fit_first():
    weak = record("hypothetical:x:y", "Something about storms and lamps and the sea at night.", "Tell me about storms.",
                  type="hypothetical", generator="template",
                  source={"file": "t.txt", "lines": [1, 1], "question": "topic", "fit": 0.31})
    strong = {**weak, "source": {**weak["source"], "fit": 0.7}}
    scores = [risk(r, 0.3)[0] for r in (weak, strong, A)]
    assert scores[0] > scores[1] > scores[2]
    assert any("fit 0.31" in reason for reason in risk(weak, 0.3)[1])


def test_risk_flags_a_production_note_left_inside_an_answer():
    noted = record("extracted:one-L40-1", "Paper is patient. A colony isn't. EDITOR NOTE: nettle story = cold open")
    score, reasons = risk(noted, 0.3)
    assert score > risk(A, 0.3)[0] and any("EDITOR NOTE" in reason for reason in reasons)
    assert not any("label" in reason for reason in risk(record("x:y", "The BBC: they came twice."), 0.3)[1])
