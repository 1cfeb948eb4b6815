"""Word .docx transcripts (Otter, Rev and Trint export them): the text is read with python-docx and parsed by the
same detectors as a .txt file. Paragraph styles are ignored; line breaks inside a paragraph are kept."""

from __future__ import annotations

import io
from collections.abc import Iterator

from personaforge.errors import PersonaForgeError


def _blocks(document) -> Iterator[str]:
    """Paragraph texts in document order; a table row is one line of tab-separated cells."""
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                seen: set[int] = set()
                cells = []
                for cell in row.cells:  # a merged cell is listed once per grid column it spans
                    if id(cell._tc) not in seen:
                        seen.add(id(cell._tc))
                        cells.append(" ".join(p.text.strip() for p in cell.paragraphs if p.text.strip()))
                yield "\t".join(cells)
        else:
            yield block.text


def read_docx(data: bytes, source: str) -> tuple[str, list[int]]:
    """The document as text, and for each text line (0-based) the number of the Word paragraph it came from.

    Exports put each label and each paragraph of speech in a paragraph of its own, where text exports separate
    them with a blank line, so paragraphs are joined with blank lines: the parsers read those as boundaries.
    """
    try:
        import docx
    except ImportError:
        raise PersonaForgeError(f"{source}: reading .docx needs python-docx; pip install python-docx") from None
    try:
        blocks = list(_blocks(docx.Document(io.BytesIO(data))))
    except Exception as exc:  # a damaged file fails in zipfile, lxml or python-docx, each with its own errors
        raise PersonaForgeError(f"{source}: cannot read it as a Word .docx file ({type(exc).__name__}); save it"
                                " again as .docx from Word, or export the transcript as .txt") from None
    lines: list[str] = []
    paragraph_of: list[int] = []
    for number, block in enumerate(blocks, start=1):
        if not block.strip():
            continue
        if lines:
            lines.append("")
            paragraph_of.append(number)
        for line in block.splitlines():  # the parsers split with splitlines() too, so the map stays aligned
            lines.append(line)
            paragraph_of.append(number)
    return "\n".join(lines), paragraph_of
