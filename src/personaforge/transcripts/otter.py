"""Otter-style transcripts: a ``Speaker Name  MM:SS`` label line, then the text until the next label."""

from __future__ import annotations

import re

from personaforge.transcripts.base import (
    ONSCREEN,
    SPEECH,
    SUBTITLE,
    Turn,
    clean_speech,
    looks_like_name,
    parse_time,
)

_TIME = r"(\d{1,2}:\d{2}(?::\d{2})?)"
LABEL_TIME_AFTER = re.compile(rf"^(?P<name>[^\s\d].*?)\s+{_TIME}\s*$")
LABEL_TIME_FIRST = re.compile(rf"^{_TIME}\s+(?P<name>[^\d].*?):?\s*$")
LABEL_COLON = re.compile(r"^(?P<name>[^\d].*?):\s*$")
NON_SPEECH = re.compile(
    r"^\s*(?P<kind>text\s+on\s+screen|subtitles?)\b(?P<note>[^:\n]{0,40}):\s*(?P<rest>.*)$", re.IGNORECASE
)
# "Wed, May 03, 2023 1:02PM • 1:26:06" (Otter's export header)
HEADER = re.compile(
    r"^\s*(mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+\w+\s+\d{1,2},?\s+\d{4}.*$|^.*\d{1,2}:\d{2}\s*[AP]M\s*•.*$",
    re.IGNORECASE,
)


def parse_label(line: str) -> tuple[str, float | None] | None:
    """Return (speaker, start) if the line is a speaker label with a timestamp."""
    stripped = line.strip()
    match = LABEL_TIME_AFTER.match(stripped)
    if match and looks_like_name(match.group("name")):
        return match.group("name").strip(), parse_time(match.group(2))
    match = LABEL_TIME_FIRST.match(stripped)
    if match and looks_like_name(match.group("name")):
        return match.group("name").strip(), parse_time(match.group(1))
    return None


def parse_otter(text: str, source: str, known_speakers: set[str] | None = None) -> tuple[list[Turn], list[str]]:
    lines = text.splitlines()
    warnings: list[str] = []
    candidates = {index: parsed for index, line in enumerate(lines) if (parsed := parse_label(line))}
    # Otter puts a blank line before each label; a speech line that merely ends in a time ("see you at
    # 10:30") is a label only if its name is used as a proper, blank-preceded label elsewhere.
    proper = {i: c for i, c in candidates.items() if i == 0 or not lines[i - 1].strip()}
    proper = _drop_out_of_order_one_offs(proper)
    proper_names = {name.casefold() for name, _ in proper.values()}
    labels = {i: c for i, c in candidates.items() if i in proper or c[0].casefold() in proper_names}
    # Labels without a timestamp are recognised when the same name is used with one elsewhere in the
    # file (or is a known persona alias), or when written as "Name:" alone on its line.
    known = {name.casefold() for name, _ in labels.values()} | {s.casefold() for s in known_speakers or ()}
    turns: list[Turn] = []
    current: Turn | None = None
    last_speech_speaker: str | None = None
    skipped = 0
    for index, raw in enumerate(lines):
        line_no = index + 1
        stripped = raw.strip()
        if not stripped:
            if current is not None and current.text and not current.text.endswith("\n"):
                current.text += "\n"
            continue
        label = labels.get(index)
        kind = SPEECH
        body = ""
        if label is None:
            match = NON_SPEECH.match(stripped)
            if match and (not match.group("note").strip() or match.group("note").strip().startswith(("-", "–"))):
                kind = SUBTITLE if match.group("kind").lower().startswith("sub") else ONSCREEN
                speaker = last_speech_speaker if kind == SUBTITLE and last_speech_speaker else stripped.split(":")[0]
                label = (speaker, None)
                body = match.group("rest")
            elif _is_bare_label(stripped, known, lines, index):
                label = (stripped.rstrip(":").strip(), None)
        if label is not None:
            speaker, start = label
            current = Turn(speaker=speaker, text=body, start=start, source=source, line=line_no, kind=kind)
            turns.append(current)
            if kind == SPEECH:
                last_speech_speaker = speaker
            continue
        if current is None:
            if not HEADER.match(stripped):
                skipped += 1
            continue
        current.text += (" " if current.text and not current.text.endswith("\n") else "") + stripped
        current.end_line = line_no
    result = []
    for turn in turns:
        turn.text = clean_speech(turn.text)
        if turn.text:
            result.append(turn)
    if skipped:
        warnings.append(f"{source}: ignored {skipped} line(s) before the first speaker label")
    return result, warnings


def _drop_out_of_order_one_offs(labels: dict[int, tuple[str, float | None]]) -> dict[int, tuple[str, float | None]]:
    """A name used once whose time breaks the file's order ("See you at 10:30" after a blank line) is speech.

    First drop one-off labels later than the label after them, then those that dip below the labels on both
    sides (in that order, so a bogus future time does not make the next genuine label look out of order).
    """
    counts: dict[str, int] = {}
    for name, _ in labels.values():
        counts[name.casefold()] = counts.get(name.casefold(), 0) + 1

    def one_off(entry: tuple[str, float | None]) -> bool:
        return counts[entry[0].casefold()] == 1 and entry[1] is not None

    items = sorted(labels.items())
    timed = [(i, e) for i, e in items if e[1] is not None]
    keep = {i for i, _ in items}
    for position, (index, entry) in enumerate(timed):
        nxt = timed[position + 1][1][1] if position + 1 < len(timed) else None
        if position and one_off(entry) and nxt is not None and entry[1] > nxt:  # the first label is never speech
            keep.discard(index)
    timed = [(i, e) for i, e in timed if i in keep]
    for position, (index, entry) in enumerate(timed):
        prev = timed[position - 1][1][1] if position else None
        nxt = timed[position + 1][1][1] if position + 1 < len(timed) else None
        # a dip: earlier than the labels on both sides, which are themselves in order
        if one_off(entry) and prev is not None and nxt is not None and entry[1] < prev <= nxt:
            keep.discard(index)
    return {i: e for i, e in items if i in keep}


def _is_bare_label(stripped: str, known: set[str], lines: list[str], index: int) -> bool:
    name = stripped.rstrip(":").strip()
    if not looks_like_name(name):
        return False
    follows_blank = index == 0 or not lines[index - 1].strip()
    has_text_after = index + 1 < len(lines) and bool(lines[index + 1].strip())
    if not (follows_blank and has_text_after):
        return False
    return name.casefold() in known or bool(LABEL_COLON.match(stripped))
