"""The data build on the bundled samples and on small fixtures: counts, split hygiene, determinism, leakage."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from personaforge.config import DataConfig, load_data_config
from personaforge.dataset.build import OUTPUT_FILES, build_dataset
from personaforge.dataset.text import norm_words
from personaforge.dataset.segments import build_segments
from personaforge.errors import PersonaForgeError
from personaforge.personas import Roster, load_cards
from personaforge.transcripts import discover, parse_file
from tests.conftest import REPO, assert_user_error, run_persona


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> tuple[DataConfig, object]:
    config, _ = load_data_config(REPO / "configs/data/default.yaml")
    out = tmp_path_factory.mktemp("bundled") / "default"
    config = config.model_copy(update={
        "transcripts": [str(REPO / p) for p in config.transcripts],
        "personas": [str(REPO / p) for p in config.personas],
        "out": str(out),
    })
    return config, build_dataset(config)


def test_bundled_build_meets_the_size_bar(bundled):
    _, result = bundled
    assert len(result.train) >= 300
    assert len(result.eval) >= 40
    personas = {r["persona"] for r in result.train}
    assert personas == {"Tomas Varga", "Leila Haddad", "Odile Marchetti"}
    for persona in personas:
        types = {r["type"] for r in result.train if r["persona"] == persona}
        # contrastive only where a persona's own words answer the shared question: not every persona has one
        assert {"extracted", "transformed", "hypothetical", "negative"} <= types
        assert any(r["persona"] == persona for r in result.eval)
    assert "contrastive" in {r["type"] for r in result.train}
    assert {r["type"] for r in result.eval} == {"extracted"}


def test_records_carry_both_formats_and_provenance(bundled):
    _, result = bundled
    for record in result.train + result.eval:
        for key in ("id", "persona", "type", "segment", "source", "generator", "prompt", "completion", "messages"):
            assert key in record
        name = record["persona"]
        assert record["prompt"].endswith(f"\n\nHuman: {record['messages'][-2]['content']}\n\n{name}:")
        assert record["completion"] == " " + record["messages"][-1]["content"]
        assert record["messages"][0] == {"role": "system", "content": record["prompt"].split("\n\nHuman: ")[0]}
        assert record["generator"] in ("transcript", "template")
    ids = [r["id"] for r in result.train + result.eval]
    assert len(ids) == len(set(ids))


def test_eval_answers_are_the_persona_s_own_words(bundled):
    config, result = bundled
    spoken: dict[str, list[str]] = {}
    for path in discover([Path(p) for p in config.transcripts]):
        for turn in parse_file(path).turns:
            if turn.kind == "speech":
                spoken.setdefault(turn.speaker.split()[0].casefold(), []).extend(norm_words(turn.text))
    corpus = {speaker: " ".join(words) for speaker, words in spoken.items()}
    for record in result.eval:
        words = " ".join(norm_words(record["completion"]))
        assert words in corpus[record["persona"].split()[0].casefold()], record["id"]


def test_nothing_from_a_held_out_segment_reaches_training(bundled):
    _, result = bundled
    held = {r["segment"] for r in result.eval}
    assert not [r["id"] for r in result.train if r["segment"] in held]
    # ...not even as conversational context in a training prompt
    for record in result.eval:
        answer = record["completion"].strip()
        assert not [r["id"] for r in result.train if answer in r["prompt"]]


def _segments(config: DataConfig):
    roster = Roster(load_cards([Path(p) for p in config.personas]))
    transcripts = [parse_file(path, config.format, roster.known_labels)
                   for path in discover([Path(p) for p in config.transcripts])]
    return build_segments(transcripts, roster, config).segments


def test_split_is_stratified_by_persona_and_holds_real_questions_first(bundled):
    config, result = bundled
    segments = _segments(config)
    for persona in {r["persona"] for r in result.train}:
        total = sum(1 for s in segments if s.persona == persona)
        held = {r["segment"] for r in result.eval if r["persona"] == persona}
        assert len(held) == round(config.eval_fraction * total)
    # the bundled transcripts have plenty of real question → answer pairs, so eval holds only those
    assert all(r["source"]["question"] == "transcript" for r in result.eval)
    real = result.card["quality"]["eval_real_questions"]
    assert real == {"records": len(result.eval), "with_real_question": len(result.eval)}


def test_every_chunk_of_a_turn_lands_in_one_split(bundled):
    config, result = bundled
    eval_segments = {r["segment"] for r in result.eval}
    groups: dict[str, set[bool]] = {}
    for segment in _segments(config):
        groups.setdefault(segment.group, set()).add(segment.id in eval_segments)
    assert all(len(sides) == 1 for sides in groups.values())


def test_card_reports_inputs_counts_and_leakage(bundled):
    config, result = bundled
    card = json.loads((Path(config.out) / "dataset_card.json").read_text())
    assert card["totals"]["train"] == len(result.train)
    assert sum(sum(c.values()) for c in card["counts"]["eval"].values()) == len(result.eval)
    assert card["leakage"]["max_shared_ngram"] <= config.max_leak_ngram
    labels = {u["label"] for u in card["unassigned_speakers"]}
    assert "Marco Lind" in labels and "Sam Keller" not in labels
    assert len(card["inputs"]["transcripts"]) == 5
    assert all(re.fullmatch(r"[0-9a-f]{64}", t["sha256"]) for t in card["inputs"]["transcripts"])
    markdown = (Path(config.out) / "dataset_card.md").read_text()
    assert "## Leakage check" in markdown and "Marco Lind" in markdown


def test_same_inputs_and_seed_give_identical_bytes(bundled, tmp_path):
    config, _ = bundled
    again = config.model_copy(update={"out": str(tmp_path / "again")})
    build_dataset(again)
    for name in OUTPUT_FILES:
        assert (Path(config.out) / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_another_seed_gives_another_split(bundled):
    config, result = bundled
    other = build_dataset(config.model_copy(update={"seed": 1}), write=False)
    assert {r["segment"] for r in other.eval} != {r["segment"] for r in result.eval}


def _plant(project, text: str) -> None:
    (project.transcripts / "planted.txt").write_text(f"Interviewer\tWhat is the island like in winter?\nAda\t{text}\n",
                                                    encoding="utf-8")


def test_a_planted_paraphrase_of_an_eval_answer_is_caught(project):
    config = DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)],
                        out=str(project.root / "out"), eval_fraction=0.3)
    first = build_dataset(config)
    held = next(r for r in first.eval if len(r["completion"].split()) >= 12)
    words = held["completion"].split()
    paraphrase = "Well, as I said, " + " ".join(words[:-2]) + " and so on, you know."
    before = {name: (project.root / "out" / name).read_bytes() for name in OUTPUT_FILES}
    _plant(project, paraphrase)
    with pytest.raises(PersonaForgeError) as caught:
        build_dataset(config)
    message = str(caught.value)
    assert held["id"] in message and "planted" in message and "leakage" in message
    # the failed build left the earlier dataset exactly as it was, with no temporary files
    assert {name: (project.root / "out" / name).read_bytes() for name in OUTPUT_FILES} == before
    assert sorted(p.name for p in (project.root / "out").iterdir()) == sorted(OUTPUT_FILES)


def test_leak_limit_is_configurable(project):
    config = DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)],
                        out=str(project.root / "out"), eval_fraction=0.3)
    held = next(r for r in build_dataset(config, write=False).eval if len(r["completion"].split()) >= 12)
    _plant(project, "Well, " + held["completion"].strip())
    result = build_dataset(config.model_copy(update={"max_leak_ngram": 500}), write=False)
    assert result.card["leakage"]["max_shared_ngram"] >= len(norm_words(held["completion"]))


def test_persona_without_eval_record_is_a_warning(project):
    config = DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)],
                        out=str(project.root / "out"), eval_fraction=0.01)
    result = build_dataset(config, write=False)
    assert any("has no eval record" in w for w in result.card["warnings"])


def test_cli_build_prints_summary_and_writes_files(project):
    result = run_persona(*project.build_args("ds"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"dataset: {project.root / 'ds'}"
    assert "Ada Bell" in result.stdout and "leakage" in result.stdout
    assert sorted(p.name for p in (project.root / "ds").iterdir()) == sorted(OUTPUT_FILES)


def test_cli_errors_write_nothing(project):
    (project.transcripts / "empty.txt").write_text("   \n", encoding="utf-8")
    result = run_persona(*project.build_args("never"))
    assert_user_error(result, "empty.txt", "empty")
    assert not (project.root / "never").exists()


def test_no_persona_speech_is_an_error(project):
    (project.transcripts / "one.txt").write_text("Zed\tHello there.\nYan\tHi, how are you?\n", encoding="utf-8")
    assert_user_error(run_persona(*project.build_args()), "no persona speech", "Zed")


def test_redact_others_replaces_self_introductions(project):
    transcript = project.transcripts / "one.txt"
    transcript.write_text(transcript.read_text() + "Audience 3\tHi, my name is Clara Jensen, I'm a teacher from"
                          " Aarhus. Ada, do storms frighten you?\nAda\tNever the storms, only the calm before"
                          " them, when the gulls go quiet and the barometer drops.\n", encoding="utf-8")
    base = DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)], eval_fraction=0)
    plain = build_dataset(base, write=False)
    assert any("Clara Jensen" in r["prompt"] for r in plain.train)
    redacted = build_dataset(base.model_copy(update={"redact_others": True}), write=False)
    prompts = [r["prompt"] for r in redacted.train]
    assert not any("Clara" in p or "Aarhus" in p for p in prompts)
    assert any("I am an audience member. Ada, do storms frighten you?" in p for p in prompts)


def test_bundled_config_runs_from_the_repository(tmp_path):
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    result = run_persona("data", "build", "configs/data/default.yaml", "--out", "built", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "built" / "train.jsonl").stat().st_size > 0
