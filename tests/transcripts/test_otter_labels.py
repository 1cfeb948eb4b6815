"""Otter label layouts, one test per variant: parenthetical qualifiers with commas, digits and other languages'
words must start a new turn, never glue the next speaker's words onto the previous answer."""

from __future__ import annotations

import pytest

from personaforge.transcripts import parse_text
from personaforge.transcripts.otter import parse_label

ANSWER = "Leila Haddad  1:00:40\nThe forest needs about four years to close its canopy.\n\n"
AFTER = "\n\nLeila Haddad  1:02:30\nThank you, that is a fair question.\n"


def speakers_and_texts(label: str, question: str = "Is it too late for us?"):
    t = parse_text(f"{ANSWER}{label}\n{question}{AFTER}", "x.txt")
    assert t.format == "otter"
    return [(turn.speaker, turn.text) for turn in t.turns]


def assert_separate_turn(label: str, speaker: str, question: str = "Is it too late for us?") -> None:
    assert speakers_and_texts(label, question) == [
        ("Leila Haddad", "The forest needs about four years to close its canopy."),
        (speaker, question),
        ("Leila Haddad", "Thank you, that is a fair question."),
    ]


def test_parenthetical_with_commas():
    assert_separate_turn("audience member (front, in Danish)  1:01:18", "audience member (front, in Danish)")


def test_parenthetical_with_digits():
    assert_separate_turn("Zuschauerin (2. Reihe)  1:01:18", "Zuschauerin (2. Reihe)")


def test_parenthetical_in_another_language_and_script():
    assert_separate_turn("слушатель (зал, 3-й ряд)  1:01:18", "слушатель (зал, 3-й ряд)", "Это не поздно?")


def test_parenthetical_with_a_name_and_a_role():
    assert_separate_turn("Speaker 3 (Ana, interpreter)  1:01:18", "Speaker 3 (Ana, interpreter)")


def test_label_in_another_script():
    assert_separate_turn("観客  1:01:18", "観客", "遅すぎますか？")


def test_unknown_speaker_label():
    assert_separate_turn("Unknown Speaker  1:01:18", "Unknown Speaker")


def test_minutes_only_time():
    t = parse_text("Leila Haddad  0:03\nHello.\n\naudience member (back, left)  12:04\nA question.\n", "x.txt")
    assert [(turn.speaker, turn.start) for turn in t.turns] == [("Leila Haddad", 3.0),
                                                                ("audience member (back, left)", 724.0)]


def test_time_first_with_a_parenthetical():
    assert_separate_turn("1:01:18 audience member (front, in Danish)", "audience member (front, in Danish)")


def test_label_without_time_written_with_a_colon():
    assert_separate_turn("audience member (front, in Danish):", "audience member (front, in Danish)")


@pytest.mark.parametrize("line", [
    "Well, I said it was 10:30",  # a comma outside parentheses: a sentence
    "We met (me, her) at 10:30",  # a parenthetical with a comma in the middle: a sentence
])
def test_parenthetical_rules_do_not_turn_sentences_into_labels(line):
    assert parse_label(line) is None


def test_parse_label_keeps_the_whole_qualified_name():
    assert parse_label("audience member (front, in Danish)  1:01:18") == ("audience member (front, in Danish)", 3678.0)
