"""SubRip (.srt) and WebVTT (.vtt): speakers from <v Name> tags or NAME: / - Name: prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import SPEECH, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"


def rows(transcript):
    return [(t.speaker, t.text, t.start, t.line) for t in transcript.turns]


def srt(*cues: str) -> str:
    """Numbered SRT cues from 'start|text' strings (start as HH:MM:SS,mmm)."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        start, text = cue.split("|", 1)
        blocks.append(f"{number}\n{start} --> 99:00:00,000\n{text}\n")
    return "\n".join(blocks)


def parse_srt(text: str):
    return parse_text(text, "x.srt", "srt", ".srt")


def parse_vtt(text: str):
    return parse_text(text, "x.vtt", "vtt", ".vtt")


@pytest.mark.parametrize(
    ("cue_text", "speaker", "text"),
    [
        ("JASPER: Hello there.", "JASPER", "Hello there."),
        ("Jasper Holm: Hello there.", "Jasper Holm", "Hello there."),
        ("- Mira: Hello there.", "Mira", "Hello there."),
        ("-Mira: Hello there.", "Mira", "Hello there."),
        ("<v Mira Vos>Hello there.", "Mira Vos", "Hello there."),
    ],
)
def test_srt_speaker_from_prefix_or_voice_tag(cue_text, speaker, text):
    t = parse_srt(srt(f"00:00:01,500|{cue_text}"))
    assert t.format == "srt"
    assert rows(t) == [(speaker, text, 1.5, 2)]
    assert t.turns[0].kind == SPEECH


def test_srt_consecutive_cues_by_the_same_speaker_merge():
    t = parse_srt(srt("00:00:01,000|JASPER: One.", "00:00:02,000|JASPER: Two.", "00:00:03,000|MIRA: Three."))
    assert rows(t) == [("JASPER", "One. Two.", 1.0, 2), ("MIRA", "Three.", 3.0, 10)]
    assert t.turns[0].end_line == 7


def test_srt_cue_without_label_continues_the_previous_speaker():
    t = parse_srt(srt("00:00:01,000|JASPER: One.", "00:00:02,000|And two.", "00:00:03,000|MIRA: Three."))
    assert rows(t) == [("JASPER", "One. And two.", 1.0, 2), ("MIRA", "Three.", 3.0, 10)]
    assert t.warnings == []


def test_srt_multi_line_cue_text_is_joined():
    t = parse_srt(srt("00:00:01,000|JASPER: One line\nand the next."))
    assert rows(t) == [("JASPER", "One line and the next.", 1.0, 2)]


def test_srt_first_cue_without_any_label_is_unknown_with_a_warning():
    t = parse_srt(srt("00:00:01,000|hello there", "00:00:02,000|MIRA: Hi."))
    assert rows(t) == [("Unknown", "hello there", 1.0, 2), ("MIRA", "Hi.", 2.0, 6)]
    assert t.warnings == ["x.srt: 1 cue(s) had no speaker label; they were given to the previous speaker"]


def test_srt_lower_case_prose_with_a_colon_is_not_a_speaker():
    t = parse_srt(srt("00:00:01,000|JASPER: One.", "00:00:02,000|the plan was: go north."))
    assert rows(t) == [("JASPER", "One. the plan was: go north.", 1.0, 2)]


def test_srt_bracketed_notes_and_tags_are_removed():
    t = parse_srt(srt("00:00:01,000|JASPER: <i>Hello</i> [laughs] there &amp; back."))
    assert rows(t) == [("JASPER", "Hello there & back.", 1.0, 2)]


def test_srt_cue_that_is_only_a_note_adds_no_turn():
    t = parse_srt(srt("00:00:01,000|JASPER: One.", "00:00:02,000|[Music]", "00:00:03,000|MIRA: Two."))
    assert rows(t) == [("JASPER", "One.", 1.0, 2), ("MIRA", "Two.", 3.0, 10)]


@pytest.mark.parametrize(
    ("timing", "seconds"),
    [
        ("00:00:01,000", 1.0),
        ("00:01:02,250", 62.25),
        ("01:00:00,5", 3600.5),
        ("00:00:01.000", 1.0),  # dot instead of comma
    ],
)
def test_srt_start_times_in_seconds(timing, seconds):
    t = parse_srt(srt(f"{timing}|JASPER: Hi."))
    assert rows(t) == [("JASPER", "Hi.", seconds, 2)]
    assert isinstance(t.turns[0].start, float)


def test_srt_times_of_later_turns_are_kept():
    t = parse_srt(srt("00:00:01,000|JASPER: One.", "00:01:07,500|MIRA: Two.", "01:02:03,000|JASPER: Three."))
    assert [tt.start for tt in t.turns] == [1.0, 67.5, 3723.0]


def test_vtt_voice_tags():
    text = (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\n<v Jasper Holm>Hello there.\n\n"
        "00:00:02.500 --> 00:00:03.000\n<v Jasper Holm>Still me.</v>\n\n"
        "00:00:04.000 --> 00:00:05.000\n<v.loud Mira Vos>Hi!</v>\n"
    )
    t = parse_vtt(text)
    assert t.format == "vtt"
    assert rows(t) == [("Jasper Holm", "Hello there. Still me.", 1.0, 3), ("Mira Vos", "Hi!", 4.0, 9)]


def test_vtt_prefix_labels_and_unlabelled_cue():
    text = (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.000\nMIRA: Hello.\n\n"
        "00:00:03.000 --> 00:00:04.000\nStill Mira.\n\n"
        "00:00:05.000 --> 00:00:06.000\n- Jasper: Hi.\n"
    )
    t = parse_vtt(text)
    assert rows(t) == [("MIRA", "Hello. Still Mira.", 1.0, 3), ("Jasper", "Hi.", 5.0, 9)]


def test_vtt_short_timestamps_cue_settings_ids_and_notes():
    text = (
        "WEBVTT - a fictional film\n\n"
        "NOTE written for the tests\n\n"
        "intro\n"
        "00:01.500 --> 00:02.000 align:start position:10%\n"
        "<v Mira>Hello.</v>\n\n"
        "1:05.000 --> 1:06.000\n"
        "<v Jasper>Hi.</v>\n"
    )
    t = parse_vtt(text)
    assert rows(t) == [("Mira", "Hello.", 1.5, 6), ("Jasper", "Hi.", 65.0, 9)]


def test_vtt_dialogue_cue_with_two_speakers():
    text = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n- Jasper: Ready?\n- Mira: Yes.\n"
    t = parse_vtt(text)
    assert rows(t) == [("Jasper", "Ready?", 1.0, 3), ("Mira", "Yes.", 1.0, 3)]


def test_vtt_must_start_with_webvtt():
    with pytest.raises(PersonaForgeError, match=r"^x\.vtt:1: .*WEBVTT"):
        parse_vtt("00:00:01.000 --> 00:00:02.000\n<v A>Hi.\n")


def test_subtitles_without_cues_are_an_error():
    with pytest.raises(PersonaForgeError, match=r"^x\.srt:1: no subtitle cues"):
        parse_srt("JASPER: no timing lines here\n")


def test_unreadable_cue_time_names_its_line():
    with pytest.raises(PersonaForgeError, match=r"^x\.srt:2: cannot read the cue time '00:99:01,000'"):
        parse_srt("1\n00:99:01,000 --> 00:99:02,000\nJASPER: Hi.\n")


def test_srt_fixture_file_parses_to_exact_turns():
    t = parse_file(FIXTURES / "dialogue.srt")
    assert t.format == "srt"
    assert rows(t) == [
        ("JASPER", "Hello there. And more from me.", 1.0, 2),
        ("Mira", "Hi Jasper.", 5.25, 10),
        ("JASPER", "Back again.", 67.5, 14),
    ]
    assert all(tt.source.endswith("fixtures/dialogue.srt") for tt in t.turns)


def test_vtt_fixture_file_parses_to_exact_turns():
    t = parse_file(FIXTURES / "dialogue.vtt")
    assert t.format == "vtt"
    assert rows(t) == [
        ("Jasper Holm", "Hello there. Still talking. No label on this cue.", 1.0, 5),
        ("Mira Vos", "Bye & thanks.", 64.5, 14),
    ]
    assert t.turns[0].end_line == 12
    assert all(tt.source.endswith("fixtures/dialogue.vtt") for tt in t.turns)
