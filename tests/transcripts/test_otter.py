"""Otter-style transcripts: a ``Speaker Name  MM:SS`` label line, then the text until the next label."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.transcripts import ONSCREEN, SPEECH, SUBTITLE, parse_file, parse_text
from personaforge.transcripts.otter import parse_label

FIXTURES = Path(__file__).parent / "fixtures"


def rows(transcript):
    return [(t.speaker, t.text, t.start, t.line) for t in transcript.turns]


def kinds(transcript):
    return [t.kind for t in transcript.turns]


def otter(text: str, known_speakers=None):
    return parse_text(text, "x.txt", "otter", known_speakers=known_speakers)


@pytest.mark.parametrize(
    ("label", "speaker", "seconds"),
    [
        ("Jasper Holm  00:04", "Jasper Holm", 4.0),
        ("Jasper Holm 00:04", "Jasper Holm", 4.0),  # one space is enough
        ("Jasper Holm      12:34", "Jasper Holm", 754.0),
        ("Jasper Holm  1:02:03", "Jasper Holm", 3723.0),  # H:MM:SS
        ("jasper  00:10", "jasper", 10.0),  # lower-case label
        ("researcher (korean)  01:10", "researcher (korean)", 70.0),  # parentheses
        ("Speaker 2  00:04", "Speaker 2", 4.0),
        ("23:50 Some speakers:", "Some speakers", 1430.0),  # time first
        ("23:50 Mira Vos", "Mira Vos", 1430.0),
    ],
)
def test_label_line_then_text_until_the_next_label(label, speaker, seconds):
    t = otter(f"{label}\nFirst line of speech\nand the second line.\n\nMira Vos  59:00\nAn answer.\n")
    assert rows(t) == [
        (speaker, "First line of speech and the second line.", seconds, 1),
        ("Mira Vos", "An answer.", 3540.0, 5),
    ]
    assert kinds(t) == [SPEECH, SPEECH]
    assert t.turns[0].end_line == 3


def test_parse_label_rejects_prose_and_times_alone():
    assert parse_label("Jasper Holm  00:04") == ("Jasper Holm", 4.0)
    assert parse_label("23:50 Some speakers:") == ("Some speakers", 1430.0)
    assert parse_label("00:04") is None
    assert parse_label("Well, I said it was 10:30") is None  # comma: not a name
    assert parse_label("Jasper Holm") is None


def test_paragraph_breaks_inside_a_turn_are_kept():
    t = otter("Jasper Holm  00:04\nFirst paragraph.\n\nSecond paragraph.\n\nMira Vos  00:09\nOk.\n")
    assert rows(t) == [("Jasper Holm", "First paragraph.\nSecond paragraph.", 4.0, 1), ("Mira Vos", "Ok.", 9.0, 6)]


def test_bracketed_notes_are_removed():
    t = otter("Jasper Holm  00:04\nWell [laughs] it was [inaudible 00:14:02] hard [?].\n")
    assert rows(t) == [("Jasper Holm", "Well it was hard.", 4.0, 1)]


def test_label_without_timestamp_is_a_turn_when_the_name_is_used_with_one_elsewhere():
    t = otter("Jasper Holm  00:04\nHello.\n\nMira Vos  00:09\nHi.\n\nJasper Holm\nNo timestamp here.\n")
    assert rows(t) == [
        ("Jasper Holm", "Hello.", 4.0, 1),
        ("Mira Vos", "Hi.", 9.0, 4),
        ("Jasper Holm", "No timestamp here.", None, 7),
    ]


def test_label_without_timestamp_written_with_a_colon():
    t = otter("Jasper Holm  00:04\nHello.\n\nNarrator:\nOnce upon a time.\n")
    assert rows(t) == [("Jasper Holm", "Hello.", 4.0, 1), ("Narrator", "Once upon a time.", None, 4)]


def test_file_with_no_timestamps_at_all_uses_colon_labels():
    t = otter("Anna:\nHello there.\n\nBob Lee:\nHi Anna.\n")
    assert rows(t) == [("Anna", "Hello there.", None, 1), ("Bob Lee", "Hi Anna.", None, 4)]


def test_label_without_timestamp_from_known_speakers():
    t = otter("Jasper Holm  00:04\nHello.\n\nMira\nHi there.\n", known_speakers={"mira"})
    assert rows(t) == [("Jasper Holm", "Hello.", 4.0, 1), ("Mira", "Hi there.", None, 4)]


def test_unknown_bare_name_without_colon_is_speech_not_a_label():
    t = otter("Jasper Holm  00:04\nHello.\n\nMira\nHi there.\n")
    assert rows(t) == [("Jasper Holm", "Hello.\nMira Hi there.", 4.0, 1)]


@pytest.mark.parametrize(
    ("block", "speaker", "text"),
    [
        ("TEXT on screen: Harbour, 1989", "TEXT on screen", "Harbour, 1989"),
        ("Text on Screen: Harbour, 1989", "Text on Screen", "Harbour, 1989"),
        ("TEXT on screen:\nHarbour, 1989", "TEXT on screen", "Harbour, 1989"),
        ("Text on Screen - editor voice: The wall falls.", "Text on Screen - editor voice", "The wall falls."),
        ("Text on Screen - editor voice:\nThe wall falls.", "Text on Screen - editor voice", "The wall falls."),
    ],
)
def test_text_on_screen_blocks_are_onscreen_not_speech(block, speaker, text):
    t = otter(f"Jasper Holm  00:04\nHello.\n\n{block}\n\nMira Vos  00:09\nHi.\n")
    assert [(tt.speaker, tt.text, tt.start, tt.kind) for tt in t.turns] == [
        ("Jasper Holm", "Hello.", 4.0, SPEECH),
        (speaker, text, None, ONSCREEN),
        ("Mira Vos", "Hi.", 9.0, SPEECH),
    ]
    assert t.turns[1].line == 4


@pytest.mark.parametrize(
    ("block", "text"),
    [
        ("Subtitles: I am here.", "I am here."),
        ("SUBTITLES: I am here.", "I am here."),
        ("Subtitle: I am here.", "I am here."),
        ("Subtitles:\nI am here.\nAll of us.", "I am here. All of us."),
        ("SUBTITLES:\nI am here.", "I am here."),
    ],
)
def test_subtitle_blocks_belong_to_the_previous_speech_speaker(block, text):
    t = otter(f"Jasper Holm  00:04\nIch bin hier.\n\n{block}\n\nMira Vos  00:09\nHi.\n")
    assert [(tt.speaker, tt.text, tt.start, tt.kind) for tt in t.turns] == [
        ("Jasper Holm", "Ich bin hier.", 4.0, SPEECH),
        ("Jasper Holm", text, None, SUBTITLE),
        ("Mira Vos", "Hi.", 9.0, SPEECH),
    ]
    assert t.turns[1].line == 4


def test_subtitle_after_onscreen_text_still_translates_the_last_speaker():
    t = otter("Mira Vos  00:04\nHallo.\n\nTEXT on screen: Harbour\n\nSubtitles: Hello.\n")
    assert [(tt.speaker, tt.text, tt.kind) for tt in t.turns] == [
        ("Mira Vos", "Hallo.", SPEECH),
        ("TEXT on screen", "Harbour", ONSCREEN),
        ("Mira Vos", "Hello.", SUBTITLE),
    ]


def test_otter_export_header_is_ignored_without_a_warning():
    t = otter("Wed, May 03, 2023 1:02PM \u2022 1:26:06\n\nJasper Holm  00:04\nHello.\n")
    assert rows(t) == [("Jasper Holm", "Hello.", 4.0, 3)]
    assert t.warnings == []


def test_other_lines_before_the_first_label_are_ignored_with_a_warning():
    t = otter("SUMMARY KEYWORDS\nharbour, boats\n\nJasper Holm  00:04\nHello.\n")
    assert rows(t) == [("Jasper Holm", "Hello.", 4.0, 4)]
    assert t.warnings == ["x.txt: ignored 2 line(s) before the first speaker label"]


@pytest.mark.parametrize(
    "speech",
    [
        "see you at 10:30",
        "Meet me at 10:30",
        "The ferry leaves at 1:02:03",
    ],
)
def test_speech_line_ending_in_a_time_is_not_a_label(speech):
    t = otter(f"Jasper Holm  00:04\nHello there.\n{speech}\nand more.\n\nMira Vos  00:09\nOk.\n")
    assert rows(t) == [("Jasper Holm", f"Hello there. {speech} and more.", 4.0, 1), ("Mira Vos", "Ok.", 9.0, 6)]


def test_speech_line_ending_in_a_time_right_after_the_label_is_not_a_label():
    t = otter("Jasper Holm  00:04\nsee you at 10:30\n\nMira Vos  00:09\nOk.\n")
    assert rows(t) == [("Jasper Holm", "see you at 10:30", 4.0, 1), ("Mira Vos", "Ok.", 9.0, 4)]


def test_fixture_file_parses_to_exact_turns():
    t = parse_file(FIXTURES / "otter_interview.txt")
    assert t.format == "otter"
    assert [(tt.speaker, tt.text, tt.start, tt.line, tt.kind) for tt in t.turns] == [
        ("Jasper Holm", "Hello there, I will see you at 10:30 and then we talk.", 4.0, 3, SPEECH),
        ("researcher (korean)", "A question for you.", 3723.0, 7, SPEECH),
        ("jasper", "Lower case answer.", 3730.0, 10, SPEECH),
        ("TEXT on screen", "Harbour, 1989", None, 13, ONSCREEN),
        ("Jasper Holm", "No timestamp on this one.", None, 15, SPEECH),
        ("Jasper Holm", "I am still here.", None, 18, SUBTITLE),
    ]
    assert all(tt.source.endswith("fixtures/otter_interview.txt") for tt in t.turns)
    assert t.warnings == []


def test_speech_line_ending_in_a_time_after_a_paragraph_break_is_not_a_label():
    t = otter("Jasper Holm  00:04\nHello there.\n\nSee you at 10:30\nand more.\n\nMira Vos  00:09\nOk.\n")
    assert rows(t) == [("Jasper Holm", "Hello there.\nSee you at 10:30 and more.", 4.0, 1), ("Mira Vos", "Ok.", 9.0, 7)]
