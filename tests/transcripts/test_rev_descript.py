"""Rev (``Name (HH:MM:SS):``) and Descript / Trint (``[HH:MM:SS] Name: text``, ``Name [HH:MM:SS]``) exports."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import detect_format, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"


def rows(transcript):
    return [(t.speaker, t.text, t.start, t.line) for t in transcript.turns]


def test_rev_fixture():
    t = parse_file(FIXTURES / "rev_export.txt")
    assert t.format == "rev"
    assert rows(t) == [
        ("Moderator", "Welcome, everyone. Let us begin with the kelp.", 2.0, 3),
        ("Leona Vik", "Thank you. The kelp came back slowly: first in the sheltered bays, then on the open shelf.\n"
                      "We counted the stipes every spring.", 9.0, 6),
        ("audience member (front, in Danish)", "Hej. Kommer torsken tilbage?", 3723.0, 11),
        ("Leona Vik", "Maybe. The cod need more than a forest.", 3750.0, 14),
    ]
    assert t.warnings == [f"{t.source}: ignored 1 line(s) before the first speaker label"]


@pytest.mark.parametrize(
    ("label", "speaker", "start", "body"),
    [
        ("Speaker 1 (00:05):", "Speaker 1", 5.0, ""),  # MM:SS
        ("Speaker 1 (01:00:05):", "Speaker 1", 3605.0, ""),  # HH:MM:SS
        ("Speaker 1 (00:05): Hello.", "Speaker 1", 5.0, "Hello."),  # text on the label's line
        ("Dr. Ana de la Cruz (00:05):", "Dr. Ana de la Cruz", 5.0, ""),
        ("Joe Smith: (00:05)", "Joe Smith", 5.0, ""),  # the form of Rev's published transcripts
        ("Joe Smith: (00:05) Hello.", "Joe Smith", 5.0, "Hello."),
    ],
)
def test_rev_label_variants(label, speaker, start, body):
    t = parse_text(f"{label}\nThe text.\n\nOther (00:09):\nMore.\n", "x.txt", "rev")
    assert rows(t)[0] == (speaker, f"{body} The text.".strip(), start, 1)
    assert detect_format(f"{label}\nThe text.\n\nOther (00:09):\nMore.\n", ".txt") == "rev"


def test_rev_ignores_sentences_with_a_time_in_parentheses():
    t = parse_text("Anna (00:01):\nWe said (12:30): too late.\nhe said (12:31): yes.\n", "x.txt", "rev")
    assert rows(t) == [("Anna", "We said (12:30): too late. he said (12:31): yes.", 1.0, 1)]


def test_descript_fixture():
    t = parse_file(FIXTURES / "descript_export.txt")
    assert t.format == "descript"
    assert rows(t) == [
        ("Jonas Berg", "Are we recording? Good.", 0.0, 1),
        ("Ilse Marr", "We are. Ask your first question.", 4.0, 2),
        ("Jonas Berg", "What does the festival look like at dawn?", 8.0, 3),
        ("Ilse Marr", "Empty chairs and wet grass. The poets arrive at ten. The tents go up at eight.", 12.0, 4),
    ]


def test_trint_fixture_name_then_bracketed_time():
    t = parse_file(FIXTURES / "trint_export.txt")
    assert t.format == "descript"
    assert rows(t) == [
        ("Jonas Berg", "Are we recording? Good.", 0.0, 1),
        ("Ilse Marr", "We are. Ask your first question.", 4.0, 4),
        ("Jonas Berg", "What does the festival look like at dawn?", 8.0, 7),
        ("Ilse Marr", "Empty chairs and wet grass.", 12.0, 9),
    ]


@pytest.mark.parametrize(
    ("label", "speaker", "start", "body"),
    [
        ("[00:00:05] Ilse Marr: Hello.", "Ilse Marr", 5.0, "Hello."),
        ("[00:05] Ilse Marr: Hello.", "Ilse Marr", 5.0, "Hello."),
        ("[00:00:05.250] Ilse Marr: Hello.", "Ilse Marr", 5.25, "Hello."),
        ("[00:00:05] Ilse Marr:", "Ilse Marr", 5.0, ""),
        ("Ilse Marr [00:00:05]", "Ilse Marr", 5.0, ""),
        ("Ilse Marr [00:00:05]: Hello.", "Ilse Marr", 5.0, "Hello."),
        ("Ilse Marr [00:00:05] - Hello.", "Ilse Marr", 5.0, "Hello."),
    ],
)
def test_descript_label_variants(label, speaker, start, body):
    text = f"{label}\nThe text.\n\n[00:00:09] Jonas Berg: More.\n"
    t = parse_text(text, "x.txt", "descript")
    assert rows(t)[0] == (speaker, f"{body} The text.".strip(), start, 1)
    assert detect_format(text, ".txt") == "descript"
    assert detect_format(text, ".md") == "descript"  # a leading "[" is not taken for JSON


def test_inline_time_notes_are_not_labels():
    text = "[00:00:01] Anna: It was [inaudible 00:00:03] late.\nand we left at [00:00:09]\n"
    assert rows(parse_text(text, "x.txt", "descript")) == [("Anna", "It was late. and we left at", 1.0, 1)]


@pytest.mark.parametrize("fmt", ["rev", "descript"])
def test_forced_format_without_labels(fmt):
    with pytest.raises(PersonaForgeError, match=rf"^x\.txt:1: no speaker turns found as format '{fmt}'"):
        parse_text("Anna: Hello.\nBob: Hi.\n", "x.txt", fmt)
