"""The command line as users run it: exit codes, one-line errors, and the data subcommands."""

import json
import os
import subprocess
import sys

import pytest

from personaforge import __version__
from tests.conftest import REPO, assert_user_error, run_persona


def test_version():
    result = run_persona("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"personaforge {__version__}"


BAD_TRANSCRIPTS = [
    ("empty.txt", b"", "empty"),
    ("blank.txt", b"  \n\t\n", "empty"),
    ("binary.txt", b"Ada\thello\n\x00\x01\x02", "binary"),
    ("undecodable.txt", b"Ada\tcaf\xc3\n\x81\x8d\n", "cannot decode"),
    ("prose.txt", b"Just some prose with no speaker labels at all.\nAnother line.\n", "unknown transcript format"),
    ("broken.json", b'[{"speaker": "Ada", "text": "hi"},\n {"speaker": ', "invalid JSON"),
    ("nospeaker.jsonl", b'{"speaker": "Ada", "text": "hi"}\n{"text": "no speaker"}\n', "no 'speaker'"),
    ("bad.vtt", b"NOT A VTT\n", "WEBVTT"),
]


@pytest.mark.parametrize("name,content,needle", BAD_TRANSCRIPTS, ids=[b[0] for b in BAD_TRANSCRIPTS])
def test_bad_transcripts_are_one_line_errors_and_nothing_is_written(project, name, content, needle):
    (project.transcripts / name).write_bytes(content)
    result = run_persona(*project.build_args("never"))
    assert_user_error(result, name, needle)
    assert not (project.root / "never").exists()


BAD_CARDS = [
    ("- name: Ada\n- aliases: [X]\n", ":2: persona card has no 'name'"),
    ("- name: Ada\n  aliases: [Shared]\n- name: Ben\n  aliases: [shared]\n", "also claimed by"),
    ("- name: Ada\n  rolle: persona\n", "did you mean 'role'"),
    ("- name: Ada\n  role: hero\n", "role"),
    ("name: [unclosed\n", "invalid YAML"),
]


@pytest.mark.parametrize("text,needle", BAD_CARDS)
def test_bad_persona_cards(project, text, needle):
    project.cards.write_text(text, encoding="utf-8")
    assert_user_error(run_persona(*project.build_args("never")), "cards.yaml", needle)
    assert not (project.root / "never").exists()


def test_bad_options(project, tmp_path):
    assert_user_error(run_persona(*project.build_args("x", "--format", "docx")), "--format", "docx")
    assert_user_error(run_persona(*project.build_args("x", "--eval-fraction", "1.5")), "eval_fraction")
    assert_user_error(run_persona(*project.build_args("x", "--teacher-url", "http://127.0.0.1:9")), "--teacher-model")
    assert_user_error(run_persona("data", "build", str(tmp_path / "missing.yaml")), "missing.yaml", "not found")
    assert_user_error(run_persona("data", "build", "--personas", str(project.cards)), "no transcripts")
    assert_user_error(run_persona("data", "build", "--transcripts", str(tmp_path / "nope"), "--personas",
                                  str(project.cards)), "nope")
    config = tmp_path / "c.yaml"
    config.write_text("transcript: x\n", encoding="utf-8")
    assert_user_error(run_persona("data", "build", str(config)), "c.yaml:1", "did you mean 'transcripts'")
    assert not (project.root / "x").exists()


def test_unwritable_output_folder(project):
    blocker = project.root / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    assert_user_error(run_persona(*project.build_args("file")), "not a folder")
    assert_user_error(run_persona(*project.build_args("file/sub")), "cannot write")
    assert blocker.read_text() == "not a folder"


def test_speakers_lists_labels_with_counts(project):
    result = run_persona("data", "speakers", str(project.transcripts), "--personas", str(project.cards))
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 3}
    assert {"Ada", "Ben", "Interviewer", "Q"} <= set(rows)
    assert "Ada Bell (persona)" in rows["Ada"] and "Quinn (interviewer)" in rows["Q"]
    assert rows["Ada"].split("│")[2].strip() == "6"  # six turns


def test_stats_reads_a_built_dataset(project):
    assert run_persona(*project.build_args("ds")).returncode == 0
    result = run_persona("data", "stats", str(project.root / "ds"))
    assert result.returncode == 0, result.stderr
    train = [json.loads(line) for line in (project.root / "ds" / "train.jsonl").read_text().splitlines()]
    assert f"train: {len(train)} records" in result.stdout
    assert_user_error(run_persona("data", "stats", str(project.root / "nothing")), "nothing")


def test_tables_piped_to_another_program_keep_every_cell_on_one_line():
    # `persona models list | grep smollm2`: without a terminal rich used to wrap at 80 columns and split the name.
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["PYTHONPATH"] = str(REPO / "src")
    result = subprocess.run([sys.executable, "-m", "personaforge", "models", "list"], capture_output=True, text=True,
                            env=env, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "smollm2" in line]
    assert len(rows) == 1 and "pkg:smollm2-135m-instruct" in rows[0] and "Apache-2.0" in rows[0], result.stdout
    assert any("pkg:gemma3-270m" in line and "gemma3 base" in line for line in result.stdout.splitlines())
