"""Tab-labelled transcripts (``Name<TAB>text``): one test per quirk of the format."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.transcripts import SPEECH, parse_file, parse_text
from personaforge.transcripts.tabbed import parse_tabbed

FIXTURES = Path(__file__).parent / "fixtures"


def rows(transcript):
    """(speaker, text, start, line) for every turn: what each test pins down exactly."""
    return [(t.speaker, t.text, t.start, t.line) for t in transcript.turns]


def tab(text: str):
    return parse_text(text, "x.txt", "tab")


def test_name_tab_text_starts_a_turn():
    t = tab("Anna\tHello there.\nBob Lee\tHi Anna.\n")
    assert t.format == "tab"
    assert rows(t) == [("Anna", "Hello there.", None, 1), ("Bob Lee", "Hi Anna.", None, 2)]
    assert all(turn.kind == SPEECH for turn in t.turns)
    assert all(turn.source == "x.txt" for turn in t.turns)


def test_tab_indented_lines_continue_the_speaker_as_new_paragraphs():
    t = tab("Anna\tFirst paragraph.\n\tSecond paragraph.\n\tThird one.\nBob\tNext.\n")
    assert rows(t) == [("Anna", "First paragraph.\nSecond paragraph.\nThird one.", None, 1), ("Bob", "Next.", None, 4)]
    assert t.turns[0].end_line == 3


def test_four_space_indent_counts_as_a_tab_continuation():
    t = tab("Anna\tFirst.\n    Indented with spaces.\n")
    assert rows(t) == [("Anna", "First.\nIndented with spaces.", None, 1)]


def test_consecutive_turns_of_the_same_speaker_stay_separate():
    t = tab("Anna\tOne.\nAnna\tTwo.\n")
    assert rows(t) == [("Anna", "One.", None, 1), ("Anna", "Two.", None, 2)]


def test_name_alone_on_a_line_followed_by_a_tab_indented_line_is_a_turn():
    t = tab("Bob\tQuestion?\nAnna Berg\n\tMy answer.\n\tMore of it.\n")
    assert rows(t) == [("Bob", "Question?", None, 1), ("Anna Berg", "My answer.\nMore of it.", None, 2)]
    assert t.turns[1].end_line == 4


def test_name_alone_may_be_separated_from_its_text_by_a_blank_line():
    t = tab("Anna\n\n\tMy answer.\n")
    assert rows(t) == [("Anna", "My answer.", None, 1)]


def test_all_caps_name_alone_is_a_turn_when_used_as_a_label_elsewhere():
    t = tab("ANNA\tHi.\nBOB\tYes?\nANNA\n\tHello.\n")
    assert rows(t) == [("ANNA", "Hi.", None, 1), ("BOB", "Yes?", None, 2), ("ANNA", "Hello.", None, 3)]


def test_all_caps_heading_before_a_tabbed_line_is_not_a_speaker():
    t = tab("ANNA\tHi.\n\tStill Anna.\nPART TWO\n\tAnna again.\n")
    assert rows(t) == [("ANNA", "Hi.\nStill Anna.\nAnna again.", None, 1)]
    assert "dropped 1 line(s)" in t.warnings[0]


@pytest.mark.parametrize(
    ("timecode", "seconds"),
    [("00:05:45", 345.0), ("00:00", 0.0), ("1:02:03", 3723.0), ("12:30", 750.0), ("[00:06:00]", 360.0),
     ("(00:07)", 7.0), ("00:05:45.500", 345.5)],
)
def test_timecode_alone_on_a_line_sets_the_time_of_the_next_turn(timecode, seconds):
    t = tab(f"Anna\tBefore.\n{timecode}\nBob\tAfter.\nAnna\tLater, untimed.\n")
    assert rows(t) == [
        ("Anna", "Before.", None, 1),
        ("Bob", "After.", seconds, 3),
        ("Anna", "Later, untimed.", None, 4),
    ]


def test_timecode_before_the_first_turn_times_it():
    t = tab("00:00:10\nAnna\tFirst.\n")
    assert rows(t) == [("Anna", "First.", 10.0, 2)]


def test_timecode_between_paragraphs_starts_a_new_timed_turn_of_the_same_speaker():
    t = tab("Anna\tFirst.\n00:01:00\n\tSecond, timed.\n")
    assert rows(t) == [("Anna", "First.", None, 1), ("Anna", "Second, timed.", 60.0, 3)]


def test_tab_indented_timecode_sets_the_time_too():
    t = tab("Anna\n\t00:02:00\n\tHello.\n")
    assert rows(t) == [("Anna", "Hello.", 120.0, 1)]


@pytest.mark.parametrize(
    ("spoken", "clean"),
    [
        ("Thank you. [Applause]", "Thank you."),
        ("In 1989 [?], I think.", "In 1989, I think."),
        ("It was [laughs] funny.", "It was funny."),
        ("He said [inaudible 00:14:02] yes.", "He said yes."),
        ("[Music] [Applause] Welcome back.", "Welcome back."),
    ],
)
def test_bracketed_notes_are_removed_from_speech(spoken, clean):
    assert rows(tab(f"Anna\t{spoken}\n")) == [("Anna", clean, None, 1)]


def test_turn_that_is_only_a_bracketed_note_is_dropped():
    t = tab("Anna\t[Applause]\nBob\tThanks.\n")
    assert rows(t) == [("Bob", "Thanks.", None, 2)]


NOTES = [
    "EDITOR NOTE: check the date",
    "Keywords: river, boats, winter",
    "river, boats, winter",
    "PART TWO",
    "Chapter Three: The Harbour",
    "Check spelling of the name later please",  # 7 words: not a name, still short
    "(music fades)",
]


@pytest.mark.parametrize("note", NOTES)
def test_short_untabbed_line_before_a_continuation_is_dropped_not_glued_into_speech(note):
    t = tab(f"Anna\tFirst part.\n{note}\n\tSecond part.\nBob\tReply.\n")
    assert rows(t) == [("Anna", "First part.\nSecond part.", None, 1), ("Bob", "Reply.", None, 4)]
    assert t.warnings == ["x.txt: dropped 1 line(s) that were not speech (titles, notes, headings)"]


@pytest.mark.parametrize("note", [*NOTES, "Section 2", "cut here", "Anna"])
def test_short_untabbed_line_before_the_next_speaker_is_dropped(note):
    t = tab(f"Anna\tFirst part.\n{note}\nBob\tReply.\n")
    assert rows(t) == [("Anna", "First part.", None, 1), ("Bob", "Reply.", None, 3)]
    assert t.warnings == ["x.txt: dropped 1 line(s) that were not speech (titles, notes, headings)"]


def test_long_untabbed_line_inside_a_turn_is_a_wrapped_paragraph():
    long_line = "and then we rowed all the way across the harbour before the storm came in"
    t = tab(f"Anna\tFirst part.\n{long_line}\n")
    assert rows(t) == [("Anna", f"First part.\n{long_line}", None, 1)]
    assert t.turns[0].end_line == 2


def test_title_and_header_lines_at_the_top_are_ignored():
    text = (
        "The River Keepers \u2014 interview transcript\n"
        "Draft 3, edited by M. Lund\n"
        "Recorded in Harbour Town\n"
        "A very long introduction line that has many more than twelve words but no speaker yet\n"
        "\n"
        "Anna\tHello.\n"
    )
    t = tab(text)
    assert rows(t) == [("Anna", "Hello.", None, 6)]
    assert t.warnings == ["x.txt: dropped 4 line(s) that were not speech (titles, notes, headings)"]


def test_tab_indented_text_before_any_speaker_is_dropped():
    t = tab("\tOrphan paragraph.\nAnna\tHello.\n")
    assert rows(t) == [("Anna", "Hello.", None, 2)]


def test_windows_line_endings():
    t = tab("Anna\tHello.\r\n\tMore.\r\n00:01:00\r\nBob\tHi.\r\n")
    assert rows(t) == [("Anna", "Hello.\nMore.", None, 1), ("Bob", "Hi.", 60.0, 4)]


def test_whitespace_inside_speech_is_tidied():
    t = tab("Anna\t  Lots   of\u00a0 space .  \n")
    assert rows(t) == [("Anna", "Lots of space.", None, 1)]


def test_typographic_quotes_stay_in_the_text():
    t = tab("Anna\tIt\u2019s \u201cfine\u201d, really.\n")
    assert rows(t) == [("Anna", "It\u2019s \u201cfine\u201d, really.", None, 1)]


def test_fixture_file_parses_to_exact_turns():
    t = parse_file(FIXTURES / "tabbed_interview.txt")
    assert t.format == "tab"
    assert t.encoding == "utf-8"
    assert rows(t) == [
        ("Interviewer", "Thank you for coming.", None, 4),
        ("Jasper Holm", "Thanks for having me.\nIt has been a long year.", None, 5),
        ("Interviewer", "When did you start?", 345.0, 8),
        ("Jasper Holm", "In 1989, I think.", None, 10),
        ("Jasper Holm", "Back to the start.", 0.0, 14),
    ]
    assert all(turn.source == t.source and turn.source.endswith("fixtures/tabbed_interview.txt") for turn in t.turns)
    # title, draft line, editor note and keyword list
    assert t.warnings == [f"{t.source}: dropped 4 line(s) that were not speech (titles, notes, headings)"]


def test_name_then_timecode_then_tabbed_text_is_a_timed_turn_of_that_name():
    t = tab("Bob\tQuestion?\nAnna\n00:01:00\n\tMy answer.\n")
    assert rows(t) == [("Bob", "Question?", None, 1), ("Anna", "My answer.", 60.0, 2)]


def test_name_alone_turn_ends_on_its_text_line():
    t = tab("Anna\n\tMy answer.\n")
    assert (t.turns[0].line, t.turns[0].end_line) == (1, 2)


def test_a_long_production_note_under_a_paragraph_is_dropped_not_glued_into_speech():
    # The bundled varga_apiary.txt: a 13-word "EDITOR NOTE:" line after Tomas's tab-indented paragraph.
    text = ("Tomas\tNot of all. Of a certain kind.\n"
            "\tI'm not against learning. Paper is patient. A colony isn't.\n"
            "\n"
            "EDITOR NOTE: nettle story = possible cold open, check we have the wide shot\n"
            "\n"
            "Sam\tWhat are you looking for in this next hive?\n")
    turns, warnings = parse_tabbed(text, "t.txt")
    assert [t.speaker for t in turns] == ["Tomas", "Sam"]
    assert "EDITOR" not in turns[0].text and turns[0].text.endswith("A colony isn't.")
    assert warnings == ["t.txt: dropped 1 line(s) that were not speech (titles, notes, headings)"]
    # A long wrapped line of real speech still joins the turn.
    wrapped = text.replace("EDITOR NOTE: nettle story", "And then the nettle story, which I tell to everyone")
    assert "nettle story" in parse_tabbed(wrapped, "t.txt")[0][0].text
