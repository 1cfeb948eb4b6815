"""A garbled file in each format is one error naming file and line (or segment); `persona data speakers` shows
each file's format and says when the choice was a guess."""

from __future__ import annotations

import json

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import parse_file, parse_text
from tests.conftest import assert_user_error, run_persona

BINARY = b"Anna: hi\n\x00\x01\x02 garbage"


@pytest.mark.parametrize(
    ("name", "content", "fmt", "message"),
    [
        # text layouts: undecodable bytes, a label with an impossible time, or no labels at all
        ("a.txt", BINARY, "auto", r"a\.txt:2: looks like a binary file"),
        ("a.txt", b"Anna (00:01):\nHi.\n\nBob (00:99:05):\nYo.\n", "rev", r"a\.txt:4: cannot read the time '00:99:05'"),
        ("a.txt", b"[00:01] Anna: Hi.\n[1:75:00] Bob: Yo.\n", "descript", r"a\.txt:2: cannot read the time '1:75:00'"),
        ("a.txt", b"\n\nJust a paragraph.\n", "colon", r"a\.txt:3: no speaker turns found as format 'colon'"),
        ("a.txt", b"\nJust a paragraph.\n", "otter", r"a\.txt:2: no speaker turns found as format 'otter'"),
        ("a.txt", b"Just a paragraph.\n", "tab", r"a\.txt:1: no speaker turns found as format 'tab'"),
        ("a.srt", b"1\n00:00:99,000 --> 00:00:02,000\nHi\n", "auto", r"a\.srt:2: cannot read the cue time"),
        ("a.vtt", b"00:00:01.000 --> 00:00:02.000\nHi\n", "auto", r"a\.vtt:1: a WebVTT file must start with 'WEBVTT'"),
        ("a.json", b'[\n{"speaker": "A", "text": "x"},\n{"speaker": 1}\n]', "auto", r"a\.json:3: item 2 has no 'text'"),
        ("a.jsonl", b'{"speaker": "A", "text": "x"}\n{oops}\n', "auto", r"a\.jsonl:2: invalid JSON"),
        ("a.json", b'{"segments": [\n{"start": 0, "end": 1, "text": "x", "speaker": "A"},\n{"start": 1, "end": 2}\n]}',
         "auto", r"a\.json:3: segments\[1\] has no 'text'"),
        ("a.docx", b"PK\x03\x04 not really a zip", "auto", r"a\.docx: cannot read it as a Word \.docx file"),
    ],
)
def test_garbled_file_is_one_error_with_file_and_line(tmp_path, name, content, fmt, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(PersonaForgeError, match=message) as info:
        parse_file(path, fmt)
    assert "\n" not in str(info.value)


def test_garbled_files_through_the_cli_exit_2_with_one_error_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text(json.dumps({"segments": [{"start": 0, "end": 1, "text": "x", "speaker": "A"}, 7]}, indent=1))
    assert_user_error(run_persona("data", "speakers", str(path)), "broken.json:", "segments[1] is not an object")
    rev = tmp_path / "rev.txt"
    rev.write_text("Anna (00:01):\nHi.\n\nBob (00:99:05):\nYo.\n", encoding="utf-8")
    assert_user_error(run_persona("data", "speakers", str(rev)), "rev.txt:4:", "cannot read the time")


AMBIGUOUS = "Anna  00:01\nHello.\n\nBob  00:05\nHi.\n\nCleo\tHey.\nDan\tYo.\n"


def test_ambiguous_layout_is_read_but_flagged():
    t = parse_text(AMBIGUOUS, "x.txt")
    assert t.format == "tab" and t.alternatives == ["otter"]
    assert any("ambiguous layout" in w and "--format otter" in w for w in t.warnings)
    forced = parse_text(AMBIGUOUS, "x.txt", "otter")
    assert forced.forced and forced.alternatives == [] and not any("ambiguous" in w for w in forced.warnings)


def test_a_clear_layout_is_not_flagged():
    t = parse_text("Anna  00:01\nHello.\n\nBob  00:05\nHi.\n\nCleo  00:09\nHey.\n\nNote\tone tabbed line\n", "x.txt")
    assert t.format == "otter" and t.alternatives == []


def test_speakers_shows_each_files_format_and_names_format_when_ambiguous(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "a_mixed.txt").write_text(AMBIGUOUS, encoding="utf-8")
    (folder / "b_oral.txt").write_text("Haas: Hello.\nDorn: Hi.\nHaas: Bye.\nDorn: Bye.\n", encoding="utf-8")
    (folder / "c.json").write_text(json.dumps({"segments": [{"start": 0, "end": 1, "text": " Hi.", "speaker": "S0"}]}))
    result = run_persona("data", "speakers", str(folder))
    assert result.returncode == 0, result.stderr
    lines = {line.split(":")[0].rsplit("/", 1)[-1]: line for line in result.stdout.splitlines() if ".txt:" in line
             or ".json:" in line}
    assert "tab (detected), 2 turns; ambiguous: also fits otter, pass --format otter" in lines["a_mixed.txt"]
    assert "colon (detected), 4 turns" in lines["b_oral.txt"] and "ambiguous" not in lines["b_oral.txt"]
    assert "whisper (detected), 1 turn" in lines["c.json"]
    forced = run_persona("data", "speakers", str(folder / "a_mixed.txt"), "--format", "otter")
    assert forced.returncode == 0, forced.stderr
    assert "a_mixed.txt: otter (--format), 2 turns" in forced.stdout and "ambiguous" not in forced.stdout
