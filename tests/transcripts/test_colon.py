"""``Name: text`` transcripts: labels the file repeats, header lines, Q/A, ALL-CAPS labels, notes, false labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import detect_format, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"


def colon(text: str, known_speakers=None):
    return parse_text(text, "x.txt", "colon", known_speakers=known_speakers)


def rows(transcript):
    return [(t.speaker, t.text) for t in transcript.turns]


def test_oral_history_fixture():
    t = parse_file(FIXTURES / "colon_oral_history.txt")
    assert t.format == "colon"
    assert [turn.speaker for turn in t.turns] == ["Haas", "Dorn", "Haas", "Dorn", "Haas", "Dorn", "AUDIENCE MEMBER",
                                                  "Dorn"]
    first = t.turns[0]
    assert (first.line, first.text[:22]) == (8, "Today is the twelfth o")
    # the false label stays speech; the bracketed aside and the tape note are gone; paragraphs are kept
    assert t.turns[3].text == ("My uncle needed a deckhand who did not get seasick. There was one rule: never swim"
                               " alone. I broke it on my first day.\nThat rule saved two men I know. Later, not that"
                               " day.")
    assert (t.turns[3].line, t.turns[3].end_line) == (14, 16)
    assert t.turns[5].text.endswith("We sold at the quay instead of the gate for a while.")
    assert "END OF INTERVIEW" not in t.turns[-1].text
    assert any("ignored 5 line(s) before the first speaker label" in w for w in t.warnings)
    assert any("dropped 1 line(s)" in w for w in t.warnings)


def test_q_and_a_layout():
    t = parse_file(FIXTURES / "colon_qa.txt")
    assert t.format == "colon"
    assert [turn.speaker for turn in t.turns] == ["Q", "A"] * 3
    assert t.turns[3].text == "Every night. One hundred and twelve steps: I counted them as a child and never stopped."


def test_all_caps_labels_with_titles():
    t = parse_file(FIXTURES / "colon_caps.txt")
    assert t.format == "colon"
    assert [turn.speaker for turn in t.turns] == ["INTERVIEWER", "MS. CHEN"] * 3
    assert t.turns[3].text == ("Because the students worked during the day. Most of them packed fish until six."
                               " The school opened at seven: we had one hour to eat and walk over.")


def test_a_colon_mid_sentence_at_the_start_of_a_line_is_speech():
    text = ("Anna: Tell me about the camp.\nBo: It was cold.\nThere was one rule: never swim alone.\n"
            "Anna: Did you keep it?\nBo: Mostly.\n")
    t = colon(text)
    assert rows(t) == [
        ("Anna", "Tell me about the camp."),
        ("Bo", "It was cold. There was one rule: never swim alone."),
        ("Anna", "Did you keep it?"),
        ("Bo", "Mostly."),
    ]


def test_a_repeated_sentence_opening_is_still_not_a_label():
    # "I said" repeats, but it is not written as a label is ("I Said", "I SAID" or a lower-case name)
    text = "Anna: And then?\nBo: I called her.\nI said: come home.\nI said: now.\nAnna: Did she?\n"
    assert [turn.speaker for turn in colon(text).turns] == ["Anna", "Bo", "Anna"]


def test_a_name_used_once_is_a_label_only_when_written_like_the_others():
    base = "Anna: Hello.\n\nBo: Hi.\n\n{line}\n\nAnna: Bye.\n\nBo: Bye.\n"
    assert [t.speaker for t in colon(base.format(line="Carla Moss: Can I ask something?")).turns] == [
        "Anna", "Bo", "Carla Moss", "Anna", "Bo"]
    assert [t.speaker for t in colon(base.format(line="AUDIENCE: Can I ask something?")).turns] == [
        "Anna", "Bo", "AUDIENCE", "Anna", "Bo"]
    # lower case: how a wrapped sentence starts, never a one-off label
    t = colon(base.format(line="and the rest: we never asked."))
    assert rows(t)[1] == ("Bo", "Hi.\nand the rest: we never asked.")


def test_a_one_off_label_in_the_middle_of_a_wrapped_sentence_is_speech():
    text = "Anna: Hello.\nBo: We went to see\nGrandmother Rose: she was ninety.\nAnna: Really?\nBo: Yes.\n"
    assert rows(colon(text))[1] == ("Bo", "We went to see Grandmother Rose: she was ninety.")


def test_one_off_labels_before_the_first_repeated_label_are_header_lines():
    text = "Interviewee: Mirela Dorn\nDate: 12 March\n\nHaas: Hello.\nDorn: Hi.\nHaas: Bye.\nDorn: Bye.\n"
    t = colon(text)
    assert [turn.speaker for turn in t.turns] == ["Haas", "Dorn", "Haas", "Dorn"]
    assert t.turns[0].line == 4
    assert t.warnings == ["x.txt: ignored 2 line(s) before the first speaker label"]


def test_a_known_persona_label_counts_even_when_used_once():
    text = "Anna: Hello.\n\nBo: Hi.\n\nAnna: Who is there?\n\nzed: me.\n"
    assert [t.speaker for t in colon(text, known_speakers={"zed"}).turns] == ["Anna", "Bo", "Anna", "zed"]
    assert [t.speaker for t in colon(text).turns] == ["Anna", "Bo", "Anna"]


def test_label_alone_on_its_line_then_the_text():
    t = colon("INTERVIEWER:\nWhere were you born?\n\nMS. CHEN:\nIn Penang.\n\nINTERVIEWER: And then?\nMS. CHEN: Here.\n")
    assert rows(t) == [("INTERVIEWER", "Where were you born?"), ("MS. CHEN", "In Penang."),
                       ("INTERVIEWER", "And then?"), ("MS. CHEN", "Here.")]


@pytest.mark.parametrize("note", ["Note: the recorder stopped here.", "b-roll: gulls over the quay",
                                  "EDITOR NOTE: check the date", "PART TWO: THE KITCHEN"])
def test_notes_and_headings_are_not_speech(note):
    t = colon(f"Anna: Hello.\nBo: Hi there.\n{note}\nAnna: Go on.\nBo: Fine.\n")
    assert rows(t) == [("Anna", "Hello."), ("Bo", "Hi there."), ("Anna", "Go on."), ("Bo", "Fine.")]


def test_times_and_urls_are_not_labels():
    text = "Anna: We met at\n10:30: early.\nBo: See https://example.org: it is there.\nAnna: Ok.\nBo: Ok.\n"
    assert rows(colon(text))[0] == ("Anna", "We met at 10:30: early.")


def test_detection_prefers_colon_for_colon_files_and_keeps_older_layouts():
    assert detect_format((FIXTURES / "colon_oral_history.txt").read_text(encoding="utf-8"), ".txt") == "colon"
    assert detect_format((FIXTURES / "tabbed_interview.txt").read_text(encoding="utf-8"), ".txt") == "tab"
    assert detect_format((FIXTURES / "otter_interview.txt").read_text(encoding="utf-8"), ".txt") == "otter"


def test_prose_with_one_colon_is_still_an_unknown_format():
    with pytest.raises(PersonaForgeError, match="unknown transcript format"):
        parse_text("There was one rule: never swim alone.\nWe kept it.\n", "x.txt")


def test_forced_colon_on_prose_finds_no_turns():
    with pytest.raises(PersonaForgeError, match=r"^x\.txt:1: no speaker turns found as format 'colon'"):
        colon("There was one rule: never swim alone.\nWe kept it.\n")
