"""Records a person would sign off on: natural questions, answers that answer them, one speaker's own words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personaforge.config import DEFAULT_CONTRASTIVE_QUESTIONS, DataConfig, load_data_config
from personaforge.dataset.build import build_dataset
from personaforge.dataset.guards import LabelGuard
from personaforge.dataset.questions import (CONTINUATIONS, MARKER_QUESTION, NARRATIVE_CONTINUATIONS, NEGATIVE_QUESTIONS,
                                            TOPIC_QUESTIONS, as_asked, marker_is_saying, rephrase)
from personaforge.dataset.records import DROP_REASONS
from personaforge.dataset.text import chunk_text, dangling_start, norm_words, question_needs_context, word_count
from personaforge.personas import load_cards
from tests.conftest import REPO, run_persona

UNSEEN = REPO / "tests/dataset/fixtures/unseen"


def _build(tmp_path_factory, name: str, transcripts: list[str], personas: list[str]):
    out = tmp_path_factory.mktemp(name) / "out"
    config = DataConfig(transcripts=transcripts, personas=personas, out=str(out))
    return config, build_dataset(config)


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    config, _ = load_data_config(REPO / "configs/data/default.yaml")
    out = tmp_path_factory.mktemp("bundled") / "default"
    config = config.model_copy(update={"transcripts": [str(REPO / p) for p in config.transcripts],
                                       "personas": [str(REPO / p) for p in config.personas], "out": str(out)})
    return config, build_dataset(config)


@pytest.fixture(scope="module")
def unseen(tmp_path_factory):
    return _build(tmp_path_factory, "unseen", [str(UNSEEN / "transcripts")], [str(UNSEEN / "personas")])


def _question(record: dict) -> str:
    return record["messages"][-2]["content"]


def _history(record: dict) -> list[dict]:
    return [m for m in record["messages"][1:-2]]


def _spoken(config: DataConfig) -> str:
    """Every transcript's text, words only: what a persona's answer must be a contiguous part of."""
    from personaforge.transcripts import discover, parse_file

    words = []
    for path in discover([Path(p) for p in config.transcripts]):
        for turn in parse_file(path).turns:
            words.append(" ".join(norm_words(turn.text)))
    return "\n".join(words)


# ------------------------------------------------------------------------------------ questions by construction

def _allowed_questions(config: DataConfig) -> set[str]:
    cards = [entry.card for entry in load_cards([Path(p) for p in config.personas]) if entry.card.role == "persona"]
    allowed = set(CONTINUATIONS) | set(NARRATIVE_CONTINUATIONS) | set(config.contrastive_questions)
    for card in cards:
        for topic in card.topics:
            allowed |= {t.format(topic=as_asked(topic)) for t in TOPIC_QUESTIONS + NEGATIVE_QUESTIONS}
        allowed |= {MARKER_QUESTION.format(marker=m) for m in card.markers}
    for card in cards:  # negative questions are put about other personas' topics
        for other in cards:
            allowed |= {t.format(topic=topic) for topic in other.topics for t in NEGATIVE_QUESTIONS}
    return allowed


@pytest.mark.parametrize("which", ["bundled", "unseen"])
def test_every_written_question_comes_from_a_natural_source(which, request):
    config, result = request.getfixturevalue(which)
    allowed = _allowed_questions(config)
    real = {r["segment"]: _question(r) for r in result.train + result.eval if r["generator"] == "transcript"}
    for record in result.train + result.eval:
        if record["generator"] == "transcript":
            continue
        question = _question(record)
        if record["type"] == "transformed":
            original = real[record["segment"]]
            assert question in {rephrase(original, 0), rephrase(original, 1)}, (record["id"], question)
        else:
            assert question in allowed, (record["id"], question)


def test_no_keyword_slots_remain():
    from personaforge.dataset import writers

    assert not hasattr(writers, "QUESTION_WITH_KEYWORDS") and not hasattr(writers, "QUESTION_WITH_TOPIC")


# ------------------------------------------------------------------------------------------ answers that answer

@pytest.mark.parametrize("which", ["bundled", "unseen"])
def test_answers_are_contiguous_runs_of_one_persona_s_own_words(which, request):
    config, result = request.getfixturevalue(which)
    spoken = _spoken(config)
    for record in result.train + result.eval:
        if record["type"] == "negative":
            continue
        words = " ".join(norm_words(record["completion"]))
        assert words in spoken, record["id"]


def test_transformed_records_keep_the_answer_and_its_order(bundled):
    _, result = bundled
    extracted = {r["segment"]: r for r in result.train if r["type"] == "extracted"}
    transformed = [r for r in result.train if r["type"] == "transformed"]
    assert transformed
    for record in transformed:
        original = extracted[record["segment"]]
        assert record["completion"] == original["completion"]
        assert _question(record) != _question(original)
        assert _history(record) == _history(original)


def test_monologue_goes_on_with_the_chunk_before_as_the_earlier_turn(bundled):
    _, result = bundled
    by_segment = {r["segment"]: r for r in result.train + result.eval if r["type"] == "extracted"}
    going_on = [r for r in by_segment.values() if r["source"]["question"] == "continuation"]
    assert len(going_on) > 50
    for record in going_on:
        assert _question(record) in CONTINUATIONS + NARRATIVE_CONTINUATIONS
        base, _, chunk = record["segment"].rpartition("-")
        earlier = _history(record)[-1]["content"]
        # the earlier turn is the persona's own previous chunk of the same turn
        before = [r for r in by_segment.values() if r["segment"].startswith(base) and r["completion"].strip() == earlier]
        assert before or earlier in json.dumps([r["messages"] for r in by_segment.values()]), record["id"]


@pytest.mark.parametrize("which", ["bundled", "unseen"])
def test_retrieved_passages_fit_their_question_and_open_on_their_own(which, request):
    _, result = request.getfixturevalue(which)
    threshold = result.card["quality"]["fit"]["threshold"]
    retrieved = [r for r in result.train if r["type"] in ("hypothetical", "contrastive")
                 or r["source"]["question"] == "topic"]
    assert retrieved
    for record in retrieved:
        assert record["source"]["fit"] >= threshold, record["id"]
        assert dangling_start(record["completion"].strip().split(". ")[0] + ".") is None, record["id"]
        assert not _history(record)


def test_a_follow_up_never_loses_the_exchange_it_follows(bundled):
    _, result = bundled
    for record in result.train + result.eval:
        if record["generator"] == "transcript" and not _history(record):
            assert question_needs_context(_question(record)) is None, record["id"]


# ------------------------------------------------------------------------------------------ eval and the card

def test_card_quality_section_accounts_for_every_candidate(bundled):
    config, result = bundled
    quality = result.card["quality"]
    for record_type, entry in quality["types"].items():
        assert set(entry["dropped"]) == set(DROP_REASONS)
        assert entry["generated"] == entry["kept"] + sum(entry["dropped"].values()), record_type
        kept = [r for r in result.train + result.eval if r["type"] == record_type]
        assert entry["kept"] == len(kept), record_type
    assert quality["types"]["hypothetical"]["dropped"]["no fitting passage"] > 0
    fit = quality["fit"]
    assert fit["real_pairs"] >= 20 and 0.25 <= fit["threshold"] < 0.6
    assert fit["mismatched_at_or_above"] <= 0.06 < fit["real_at_or_above"]
    assert "calibrated" in fit["explanation"]
    chunks = quality["chunks"]
    assert chunks["later_chunks"] > 100 and chunks["share_dangling"] < 0.2
    for record_type, ids in quality["samples"].items():
        kept = {r["id"] for r in result.train + result.eval if r["type"] == record_type}
        assert len(ids) == min(10, len(kept)) and set(ids) <= kept
    markdown = (Path(config.out) / "dataset_card.md").read_text()
    assert "## Quality" in markdown and "### Question/answer fit" in markdown
    assert "of 42 eval records have a real interviewer question" in markdown or "eval records have a real" in markdown
    for ids in quality["samples"].values():
        for record_id in ids:
            assert f"`{record_id}`" in markdown


def test_the_dataset_is_the_same_from_a_fresh_process(bundled, tmp_path):
    config, _ = bundled
    result = run_persona("data", "build", str(REPO / "configs/data/default.yaml"), "--out", str(tmp_path / "again"),
                         cwd=REPO)
    assert result.returncode == 0, result.stderr
    # the same records and the same quality section (the card also names its input files, here by other paths)
    for name in ("train.jsonl", "eval.jsonl"):
        assert (Path(config.out) / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    cards = [json.loads((folder / "dataset_card.json").read_text()) for folder in (Path(config.out), tmp_path / "again")]
    assert cards[0]["quality"] == cards[1]["quality"]


# ------------------------------------------------------------------------------------ one speaker per answer

def test_a_label_inside_a_turn_is_cut_out_with_a_warning_naming_file_and_line(project):
    (project.transcripts / "glued.json").write_text(json.dumps([
        {"speaker": "Interviewer", "text": "What do you see from the gallery on a clear night?"},
        {"speaker": "Ada", "text": "On a clear night I can count eleven lights along the coast, and I know every one of"
                                   " them by its rhythm, the way you know a friend by their knock.\n"
                                   "audience member (front, in Danish)  1:01:18\n"
                                   "Hej. Mit spørgsmål er til fyrpasseren. Hvor mange lys kan du se?"},
    ], ensure_ascii=False), encoding="utf-8")
    result = build_dataset(DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)],
                                      eval_fraction=0), write=False)
    warning = next(w for w in result.card["warnings"] if "glued.json" in w)
    assert "1:01:18" in warning and "another speaker" in warning
    text = json.dumps(result.train)
    assert "Hej" not in text and "1:01:18" not in text
    assert any("eleven lights" in r["completion"] for r in result.train)
    assert result.card["quality"]["mixed_speaker_cuts"] == 1


@pytest.mark.parametrize("line", ["Sam Keller  12:34", "audience member (back row)  1:01:18", "[00:12:01] and then",
                                  "it was 1:02:33 exactly", "Sam: and what then?"])
def test_the_guard_sees_labels_and_timestamps(line):
    assert LabelGuard(["sam"]).problem(line)


@pytest.mark.parametrize("line", ["We start at 5:40 in summer.", "Samuel came at noon.", "The ratio is 3:1 at best."])
def test_the_guard_leaves_ordinary_speech_alone(line):
    assert LabelGuard(["sam"]).problem(line) is None


# ------------------------------------------------------------------------------------------------- text rules

@pytest.mark.parametrize("sentence", [
    "Then brood in the middle.", "She finished her dinner and walked off.", "Upper apiary.", "That's why we count.",
    "If they roar at you, something is wrong.", "Some of it very bad soup.", "The longer answer is that it shifted.",
    "Thank you, Amira.", "Walk with me to the end.", "The children wait for it like for Father Christmas.",
])
def test_openings_that_refer_back_are_caught(sentence):
    assert dangling_start(sentence) is not None


@pytest.mark.parametrize("sentence", [
    "Swarming is how a colony has children.", "People imagine honey comes from summer.", "Weather is the whole job.",
    "My father could tell a queenless hive from three metres with his eyes closed.", "There is a rock.",
    "This year we had rain.", "Well, I came here in 1990.",
])
def test_openings_that_stand_alone_pass(sentence):
    assert dangling_start(sentence) is None


def test_chunks_are_cut_where_the_next_chunk_stands_alone():
    opener = "Bees need water every day of the summer."
    filler = " ".join(f"The hive number {i} sits on the old stone wall." for i in range(6))
    text = f"{filler} Then the queen came out. {filler} {opener} {filler}"
    chunks = chunk_text(text, 40, 120)
    assert len(chunks) >= 2
    assert all(not c.startswith("Then") for c in chunks[1:])
    assert all(word_count(c) <= 120 for c in chunks)


def test_rephrasing_moves_whole_phrases_only():
    assert rephrase("Tell me about swarming.") == "What can you tell me about swarming?"
    assert rephrase("Why do you keep bees?") == "What makes you keep bees?"
    assert rephrase("Walk me through what you're doing.") == "Can you walk me through what you're doing?"
    assert rephrase("Dad, tell Sam about the bear.") == "Dad, can you tell Sam about the bear?"
    assert rephrase("Why did you come back? You had a flat.") == "What made you come back? You had a flat."
    assert rephrase("You said on the phone you're suspicious of experts.") is None  # a statement stays as it is
    assert rephrase("Can I go first?") is None  # a request, not a question to the person


def test_only_markers_that_are_sayings_become_questions():
    assert marker_is_saying("the bees decide")
    assert not any(marker_is_saying(m) for m in ("you see", "my grandfather used to say", "like a good chord",
                                                  "to be precise", "the data suggests", "honestly"))


def test_contrastive_questions_are_the_configured_ones(bundled):
    _, result = bundled
    for record in result.train:
        if record["type"] == "contrastive":
            assert _question(record) in DEFAULT_CONTRASTIVE_QUESTIONS
