"""Word .docx transcripts, made in the test with python-docx: read as text, parsed by the same detectors."""

from __future__ import annotations

from pathlib import Path

import pytest

docx = pytest.importorskip("docx")

from personaforge.errors import PersonaForgeError  # noqa: E402
from personaforge.transcripts import discover, parse_file  # noqa: E402


def write_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    document = docx.Document()
    for text in paragraphs:
        paragraph = document.add_paragraph(style="Heading 2" if text.isupper() else None)
        lines = text.split("\n")
        run = paragraph.add_run(lines[0])
        for line in lines[1:]:  # a soft line break (Shift+Enter) inside the paragraph
            run.add_break()
            run.add_text(line)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(path)
    return path


def rows(transcript):
    return [(t.speaker, t.text, t.line) for t in transcript.turns]


def test_otter_docx_export(tmp_path):
    path = write_docx(tmp_path / "otter.docx", [
        "Harbour interview", "Ruth Abebe  0:03", "Welcome, everyone.",
        "audience member (front, in Danish)  12:04", "Hej. Kommer torsken tilbage?",
        "Leila Haddad  12:30", "Maybe.", "The cod need more than a forest."])
    t = parse_file(path)
    assert t.format == "otter"
    # lines are Word paragraphs (1-based); paragraphs of one turn stay paragraphs
    assert rows(t) == [("Ruth Abebe", "Welcome, everyone.", 2),
                       ("audience member (front, in Danish)", "Hej. Kommer torsken tilbage?", 4),
                       ("Leila Haddad", "Maybe.\nThe cod need more than a forest.", 6)]
    assert t.turns[-1].end_line == 8
    assert t.encoding == "docx"


def test_rev_docx_export(tmp_path):
    path = write_docx(tmp_path / "rev.docx", ["Speaker 1 (00:00:02):", "Hello.", "Leona Vik (00:00:09):",
                                              "The kelp came back: slowly."])
    t = parse_file(path)
    assert t.format == "rev"
    assert [(turn.speaker, turn.text, turn.start) for turn in t.turns] == [
        ("Speaker 1", "Hello.", 2.0), ("Leona Vik", "The kelp came back: slowly.", 9.0)]


def test_colon_docx_with_soft_line_breaks_and_a_heading_style(tmp_path):
    path = write_docx(tmp_path / "colon.docx", [
        "ORAL HISTORY", "Haas: Hello.", "Dorn: Hi.\nThere was one rule: never swim alone.", "Haas: Why?", "Dorn: Cold."])
    t = parse_file(path)
    assert t.format == "colon"
    assert rows(t) == [("Haas", "Hello.", 2), ("Dorn", "Hi. There was one rule: never swim alone.", 3),
                       ("Haas", "Why?", 4), ("Dorn", "Cold.", 5)]


def test_descript_and_tabbed_docx(tmp_path):
    t = parse_file(write_docx(tmp_path / "d.docx", ["[00:00:01] Jonas Berg: Hi.", "[00:00:04] Ilse Marr: Hello."]))
    assert (t.format, [turn.speaker for turn in t.turns]) == ("descript", ["Jonas Berg", "Ilse Marr"])
    t = parse_file(write_docx(tmp_path / "t.docx", ["Sam\tHello.", "Odile\tBonjour.", "\tAnd welcome."]))
    assert (t.format, rows(t)) == ("tab", [("Sam", "Hello.", 1), ("Odile", "Bonjour.\nAnd welcome.", 2)])


def test_a_table_row_is_a_line_of_tab_separated_cells(tmp_path):
    t = parse_file(write_docx(tmp_path / "table.docx", [], table=[["Sam", "Hello."], ["Odile", "Bonjour."]]))
    assert (t.format, [(turn.speaker, turn.text) for turn in t.turns]) == ("tab", [("Sam", "Hello."),
                                                                                   ("Odile", "Bonjour.")])


def test_forced_format_applies_to_the_docx_text(tmp_path):
    path = write_docx(tmp_path / "q.docx", ["", "Q: Why?", "A: Because.", "Q: Sure?", "A: Yes."])
    t = parse_file(path, "colon")
    assert (t.format, [turn.line for turn in t.turns]) == ("colon", [2, 3, 4, 5])
    # the error names the Word paragraph (the first one is empty), not a line of the extracted text
    with pytest.raises(PersonaForgeError, match=r"q\.docx:2: no speaker turns found as format 'rev'"):
        parse_file(path, "rev")


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04 truncated zip", b""])
def test_garbled_docx_is_one_line_error(tmp_path, content):
    path = tmp_path / "broken.docx"
    path.write_bytes(content)
    with pytest.raises(PersonaForgeError, match=r"broken\.docx: cannot read it as a Word \.docx file") as info:
        parse_file(path)
    assert "\n" not in str(info.value)


def test_empty_docx_is_the_empty_transcript_error(tmp_path):
    with pytest.raises(PersonaForgeError, match="the transcript is empty"):
        parse_file(write_docx(tmp_path / "empty.docx", []))


def test_discover_finds_docx_and_skips_word_lock_files(tmp_path):
    write_docx(tmp_path / "a.docx", ["Q: Why?", "A: Because."])
    (tmp_path / "~$a.docx").write_bytes(b"\x00lock")
    assert [p.name for p in discover([tmp_path])] == ["a.docx"]
