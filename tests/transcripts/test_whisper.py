"""Whisper / WhisperX JSON: segments merge per speaker; unlabelled segments join agreeing neighbours or are reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import detect_format, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"


def whisper(segments: list, **extra) -> str:
    return json.dumps({"segments": segments, **extra}, indent=1)


def seg(text: str, speaker: str | None = None, start: float = 0.0) -> dict:
    item = {"start": start, "end": start + 1, "text": text}
    if speaker is not None:
        item["speaker"] = speaker
    return item


def rows(transcript):
    return [(t.speaker, t.text) for t in transcript.turns]


def test_whisperx_fixture():
    t = parse_file(FIXTURES / "whisperx.json")
    assert t.format == "whisper"
    assert [(turn.speaker, turn.text, turn.start, turn.line, turn.end_line) for turn in t.turns] == [
        ("SPEAKER_00", "Where are we this morning?", 0.5, 3, 3),
        # " Hm." has no speaker, but SPEAKER_01 speaks before and after it: it joins the turn
        ("SPEAKER_01", "Out past the second marker. The water is darker there. Hm. That is where the kelp starts.",
         3.4, 4, 7),
        ("SPEAKER_00", "How deep is it?", 12.7, 9, 9),
        ("SPEAKER_01", "Eight metres at low tide.", 15.1, 10, 10),
    ]
    # " Right." sits between SPEAKER_01 and SPEAKER_00: reported by index and line, left out
    assert len(t.warnings) == 1
    assert "left out 1 segment(s)" in t.warnings[0] and "segments[5] (line 8)" in t.warnings[0]


def test_leading_spaces_are_normalised_and_consecutive_segments_merge():
    t = parse_text(whisper([seg(" Hello  there.", "A"), seg("  General   Kenobi.", "A"), seg(" Hi.", "B")]), "x.json",
                   suffix=".json")
    assert rows(t) == [("A", "Hello there. General Kenobi."), ("B", "Hi.")]


@pytest.mark.parametrize(
    ("speakers", "expected", "left_out"),
    [
        (["A", None, None, "A"], [("A", "s0 s1 s2 s3")], []),
        (["A", None, "B"], [("A", "s0"), ("B", "s2")], [1]),
        ([None, "A", "A"], [("A", "s1 s2")], [0]),  # at the edges there is no agreeing pair
        (["A", "B", None], [("A", "s0"), ("B", "s1")], [2]),
    ],
)
def test_unlabelled_segments(speakers, expected, left_out):
    t = parse_text(whisper([seg(f"s{i}", s) for i, s in enumerate(speakers)]), "x.json", suffix=".json")
    assert rows(t) == expected
    if left_out:
        assert all(f"segments[{i}]" in t.warnings[0] for i in left_out)
    else:
        assert t.warnings == []


def test_diarization_labels_are_speakers_that_cards_can_alias():
    t = parse_text(whisper([seg("Hi.", "SPEAKER_00"), seg("Hello.", "SPEAKER_01")]), "x.json", suffix=".json")
    assert [turn.speaker for turn in t.turns] == ["SPEAKER_00", "SPEAKER_01"]


def test_plain_whisper_output_without_speakers_is_one_clear_error():
    with pytest.raises(PersonaForgeError, match=r"^x\.json: no segment has a 'speaker'.*--diarize"):
        parse_text(whisper([seg(" Hello."), seg(" World.")], text=" Hello. World.", language="en"), "x.json",
                   suffix=".json")


def test_detection():
    assert detect_format(whisper([seg("Hi.", "A")]), ".json") == "whisper"
    assert detect_format(whisper([seg("Hi.", "A")]), "") == "whisper"
    # our own JSON layout ("turns", or "segments" without 'end') stays 'json'
    assert detect_format('{"segments": [{"speaker": "A", "text": "Hi.", "start": 1}]}', ".json") == "json"
    assert detect_format('[{"speaker": "A", "text": "Hi."}]', ".json") == "json"


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([seg("Hi.", "A"), "oops"], r"^x\.json:\d+: segments\[1\] is not an object"),
        ([seg("Hi.", "A"), {"start": 1, "end": 2}], r"^x\.json:\d+: segments\[1\] has no 'text'"),
        ([seg("Hi.", "A"), {"start": "soon", "end": 2, "text": "x"}], r"^x\.json:\d+: segments\[1\]: 'start' must"),
        ([seg("Hi.", "A"), {"start": 1, "end": 2, "text": "x", "speaker": 3}], r"segments\[1\]: 'speaker' must"),
    ],
)
def test_garbled_segments_name_file_line_and_segment(segments, message):
    with pytest.raises(PersonaForgeError, match=message) as info:
        parse_text(whisper(segments), "x.json", "whisper")
    assert "\n" not in str(info.value)


def test_invalid_json_names_the_line():
    with pytest.raises(PersonaForgeError, match=r"^x\.json:3: invalid JSON"):
        parse_text('{"segments": [\n {"start": 0, "end": 1, "text": "a"},\n {"start": }\n]}', "x.json", "whisper")
