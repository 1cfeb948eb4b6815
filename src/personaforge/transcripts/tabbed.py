"""Tab-labelled transcripts: ``Name<TAB>text``; tab-indented lines continue the current speaker."""

from __future__ import annotations

from personaforge.transcripts.base import SPEECH, Turn, clean_speech, is_note_line, looks_like_name, parse_time

# An untabbed line with at least this many words, inside someone's turn, is treated as a wrapped
# paragraph of that turn; shorter ones are editor notes, headings or keyword lists and are dropped.
LONG_LINE_WORDS = 12


def parse_tabbed(text: str, source: str) -> tuple[list[Turn], list[str]]:
    lines = text.splitlines()
    turns: list[Turn] = []
    warnings: list[str] = []
    current: Turn | None = None
    pending_time: float | None = None
    pending_name: tuple[str, int] | None = None  # a name alone on a line, waiting for its tabbed text
    dropped = 0
    known_labels = {
        line.partition("\t")[0].strip().casefold()
        for line in lines
        if "\t" in line and not line.startswith("\t") and looks_like_name(line.partition("\t")[0])
    }

    def start_turn(speaker: str, body: str, line_no: int) -> None:
        nonlocal current, pending_time
        current = Turn(speaker=speaker.strip(), text=body, start=pending_time, source=source, line=line_no)
        turns.append(current)
        pending_time = None

    for index, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        stripped = line.strip()
        time = parse_time(stripped.strip("[]()"))
        if time is not None and len(stripped) <= 14:
            pending_time = time
            continue
        if line.startswith("\t") or line.startswith("    "):
            body = stripped
            if pending_name is not None:
                start_turn(pending_name[0], body, pending_name[1])
                current.end_line = index
                pending_name = None
            elif current is not None:
                if pending_time is not None:
                    # A timecode between paragraphs: same speaker, a new timed turn.
                    start_turn(current.speaker, body, index)
                else:
                    current.text += "\n" + body
                    current.end_line = index
            else:
                dropped += 1
            continue
        if "\t" in line:
            label, _, body = line.partition("\t")
            if looks_like_name(label):
                pending_name = None
                start_turn(label, body.strip(), index)
                continue
        pending_name = None
        if looks_like_name(stripped) and _next_is_tabbed(lines, index):
            # ALL-CAPS lines are usually headings; accept one only if it is a label used elsewhere.
            if not stripped.isupper() or stripped.casefold() in known_labels:
                pending_name = (stripped, index)
                continue
        if current is not None and len(stripped.split()) >= LONG_LINE_WORDS and not is_note_line(stripped):
            current.text += "\n" + stripped
            current.end_line = index
            continue
        dropped += 1  # title, heading, editor note or keyword list: never glued into speech

    result = []
    for turn in turns:
        turn.text = clean_speech(turn.text)
        if turn.text:
            turn.kind = SPEECH
            result.append(turn)
    if dropped:
        warnings.append(f"{source}: dropped {dropped} line(s) that were not speech (titles, notes, headings)")
    return result, warnings


def _next_is_tabbed(lines: list[str], index: int) -> bool:
    """Is the next non-empty line (after ``index``, 1-based; timecodes skipped) tab-indented?"""
    for following in lines[index:]:
        stripped = following.strip()
        if stripped and not (parse_time(stripped.strip("[]()")) is not None and len(stripped) <= 14):
            return following.startswith("\t") or following.startswith("    ")
    return False
