"""Format auto-detection, --format overrides, and the one-line errors for files that are not transcripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import FORMATS, detect_format, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"

TAB = "Anna\tHello.\nBob\tHi.\n"
OTTER = "Anna  00:01\nHello.\n\nBob  00:05\nHi.\n"
SRT = "1\n00:00:01,000 --> 00:00:02,000\nANNA: Hello.\n"
VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Anna>Hello.\n"
JSON = '[{"speaker": "Anna", "text": "Hello."}]'
JSONL = '{"speaker": "Anna", "text": "Hello."}\n{"speaker": "Bob", "text": "Hi."}\n'
PROSE = "Once upon a time there was a harbour.\nBoats came and went, and nobody kept notes.\n"


@pytest.mark.parametrize(
    ("suffix", "text", "expected"),
    [
        # the extension decides for .srt .vtt .json .jsonl, whatever the content
        (".srt", TAB, "srt"),
        (".vtt", TAB, "vtt"),
        (".json", JSONL, "json"),
        (".jsonl", JSON, "jsonl"),
        (".SRT", SRT, "srt"),
        # .txt: decided by content
        (".txt", TAB, "tab"),
        (".txt", OTTER, "otter"),
        (".txt", VTT, "vtt"),
        (".txt", "\ufeff" + VTT, "vtt"),
        (".txt", PROSE, None),
        (".txt", JSON, None),  # JSON content is only recognised outside .txt
        # other / no extension: content
        ("", JSON, "json"),
        (".md", JSONL, "jsonl"),
        (".md", SRT, "srt"),
        (".md", VTT, "vtt"),
        (".md", TAB, "tab"),
        (".md", OTTER, "otter"),
        (".md", PROSE, None),
    ],
)
def test_detect_format(suffix, text, expected):
    assert detect_format(text, suffix) == expected


def test_detect_prefers_the_format_with_more_label_lines():
    mostly_otter = "Anna  00:01\nHello.\n\nBob  00:05\nHi.\n\nNote\tone tabbed line\n"
    assert detect_format(mostly_otter, ".txt") == "otter"
    assert detect_format("Anna\tHi.\nBob\tYo.\n\nCleo  00:01\nHey.\n", ".txt") == "tab"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("tabbed_interview.txt", "tab"),
        ("otter_interview.txt", "otter"),
        ("dialogue.srt", "srt"),
        ("dialogue.vtt", "vtt"),
        ("turns.json", "json"),
        ("turns_object.json", "json"),
        ("turns.jsonl", "jsonl"),
    ],
)
def test_parse_file_auto_detects_every_fixture(name, fmt):
    t = parse_file(FIXTURES / name)
    assert t.format == fmt
    assert t.turns
    assert all(turn.line >= 1 and turn.text for turn in t.turns)


def test_format_override_wins_over_detection(tmp_path):
    path = tmp_path / "talk.txt"
    path.write_text("Anna  00:01\nHello.\n\nBob  00:05\nHi.\n\nCleo\tHey.\nDan\tYo.\n", encoding="utf-8")
    auto = parse_file(path)  # 2 tab labels vs 2 otter labels: a tie goes to tab
    assert auto.format == "tab"
    assert [(tt.speaker, tt.text, tt.line) for tt in auto.turns] == [("Cleo", "Hey.", 7), ("Dan", "Yo.", 8)]
    forced = parse_file(path, fmt="otter")
    assert forced.format == "otter"
    assert [(tt.speaker, tt.text, tt.start, tt.line) for tt in forced.turns] == [
        ("Anna", "Hello.", 1.0, 1),
        ("Bob", "Hi.\nCleo Hey. Dan Yo.", 5.0, 4),
    ]


def test_format_override_parses_jsonl_content_in_a_txt_file(tmp_path):
    path = tmp_path / "turns.txt"
    path.write_text(JSONL, encoding="utf-8")
    with pytest.raises(PersonaForgeError, match="unknown transcript format"):
        parse_file(path)
    t = parse_file(path, fmt="jsonl")
    assert [(tt.speaker, tt.text, tt.line) for tt in t.turns] == [("Anna", "Hello.", 1), ("Bob", "Hi.", 2)]


def test_format_override_srt_content_in_a_txt_file(tmp_path):
    path = tmp_path / "subs.txt"
    path.write_text(SRT, encoding="utf-8")
    t = parse_file(path, fmt="srt")
    assert t.format == "srt"
    assert [(tt.speaker, tt.text, tt.start, tt.line) for tt in t.turns] == [("ANNA", "Hello.", 1.0, 2)]


def test_format_override_tab_on_an_otter_looking_file():
    text = "Anna  00:01\nHello.\n\nCleo  00:03\nHey.\n\nBob\tHi.\n"
    auto = parse_text(text, "x.txt", "auto")
    assert auto.format == "otter"
    assert [(tt.speaker, tt.line) for tt in auto.turns] == [("Anna", 1), ("Cleo", 4)]
    t = parse_text(text, "x.txt", "tab")
    assert t.format == "tab"
    assert [(tt.speaker, tt.text, tt.line) for tt in t.turns] == [("Bob", "Hi.", 7)]


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("content", ["", "\n", "   \n\t\n", "\r\n\r\n"])
def test_empty_or_whitespace_only_transcript(tmp_path, content):
    path = tmp_path / "empty.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(PersonaForgeError) as info:
        parse_file(path)
    message = one_line_error(info)
    assert message.endswith("empty.txt: the transcript is empty; remove it or add its text")


@pytest.mark.parametrize("fmt", FORMATS)
def test_empty_transcript_is_an_error_for_every_format(fmt):
    with pytest.raises(PersonaForgeError, match=r"^x\.txt: the transcript is empty"):
        parse_text("  \n", "x.txt", fmt)


def test_unknown_format_prose_without_labels(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(PROSE, encoding="utf-8")
    with pytest.raises(PersonaForgeError) as info:
        parse_file(path)
    message = one_line_error(info)
    assert "story.txt: unknown transcript format" in message
    assert "--format" in message


@pytest.mark.parametrize(
    ("fmt", "text", "message"),
    [
        ("tab", PROSE, r"^x\.txt:1: no speaker turns found as format 'tab'"),
        ("otter", PROSE, r"^x\.txt:1: no speaker turns found as format 'otter'"),
        ("otter", TAB, r"^x\.txt:1: no speaker turns found as format 'otter'"),
        ("tab", OTTER, r"^x\.txt:1: no speaker turns found as format 'tab'"),
        ("srt", PROSE, r"^x\.txt:1: no subtitle cues"),
        ("vtt", PROSE, r"^x\.txt:1: a WebVTT file must start with 'WEBVTT'"),
        ("json", PROSE, r"^x\.txt:1: invalid JSON"),
        ("jsonl", PROSE, r"^x\.txt:1: invalid JSON"),
    ],
)
def test_forced_format_without_speaker_turns(fmt, text, message):
    with pytest.raises(PersonaForgeError, match=message) as info:
        parse_text(text, "x.txt", fmt)
    one_line_error(info)


def test_forced_format_with_only_notes_finds_no_turns():
    with pytest.raises(PersonaForgeError, match=r"^x\.txt:1: no speaker turns found as format 'tab'"):
        parse_text("Anna\t[Applause]\n", "x.txt", "tab")


def test_unknown_format_name():
    with pytest.raises(PersonaForgeError, match=r"unknown --format 'docx'"):
        parse_text(TAB, "x.txt", "docx")


def test_invalid_json_file_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"speaker": "Anna", "text": "Hello."},\n  {"speaker": "Bob", "text": }\n]\n',
                    encoding="utf-8")
    with pytest.raises(PersonaForgeError) as info:
        parse_file(path)
    assert "broken.json:3: invalid JSON" in one_line_error(info)


def test_json_item_missing_speaker_names_file_and_line(tmp_path):
    path = tmp_path / "nospeaker.json"
    path.write_text('[\n  {"speaker": "Anna", "text": "Hello."},\n  {"text": "Who?"}\n]\n', encoding="utf-8")
    with pytest.raises(PersonaForgeError) as info:
        parse_file(path)
    assert "nospeaker.json:3: item 2 has no 'speaker'" in one_line_error(info)


def test_auto_detects_tab_file_with_only_names_alone_on_their_lines():
    text = "Anna\n\tHello there.\nBob Lee\n\tHi Anna.\n\tHow are you?\n"
    t = parse_text(text, "x.txt", "auto")
    assert t.format == "tab"
    assert [(tt.speaker, tt.text, tt.line) for tt in t.turns] == [
        ("Anna", "Hello there.", 1),
        ("Bob Lee", "Hi Anna.\nHow are you?", 3),
    ]
