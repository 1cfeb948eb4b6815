"""The shared reader for line-labelled layouts (``Name: text``, Rev, Descript): a label starts a turn, unlabelled
lines continue it. Each format module only decides which lines are labels."""

from __future__ import annotations

import re
from dataclasses import dataclass

from personaforge.errors import PersonaForgeError
from personaforge.transcripts.base import (
    SPEECH,
    Turn,
    clean_speech,
    label_style,
    looks_like_name,
    name_shaped,
    parse_time,
)

# "[00:12:03]" or "00:12:03" alone on a line: a timecode for the next turn, never speech.
_TIMECODE = re.compile(r"^[\[(]?\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?[\])]?$")
# "[Tape 1, Side B]" alone on a line: an editorial note.
_NOTE_LINE = re.compile(r"^\[[^\[\]]*\]$")


@dataclass(frozen=True)
class Label:
    speaker: str
    start: float | None
    body: str  # text after the label on the same line ("" when the speech starts on the next line)


def timecode(line: str) -> float | None:
    stripped = line.strip()
    return parse_time(stripped.strip("[]()")) if _TIMECODE.match(stripped) else None


def is_heading(line: str) -> bool:
    """'END OF INTERVIEW', 'PART TWO': a short ALL-CAPS line with no sentence end is a heading, not speech."""
    letters = [c for c in line if c.isalpha()]
    # "OK" or "NASA" alone is still speech: a heading has two words or a longer one.
    return (len(letters) > 1 and all(c.isupper() for c in letters) and (len(line.split()) >= 2 or len(letters) >= 6)
            and len(line.split()) <= 8 and not line.rstrip().endswith(("?", "!", ".", ",")))


def match_timed_label(line: str, patterns: tuple[re.Pattern[str], ...]) -> re.Match[str] | None:
    """The first pattern (with 'name' and 'time' groups) that matches with a label-shaped name."""
    stripped = line.strip()
    for pattern in patterns:
        match = pattern.match(stripped)
        if match and looks_like_name(match.group("name")) and name_shaped(match.group("name")):
            return match
    return None


# A timecode inside a Rev or Descript label: MM:SS or HH:MM:SS, optional fraction.
TIMECODE = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"


def parse_timed(text: str, source: str, patterns: tuple[re.Pattern[str], ...]) -> tuple[list[Turn], list[str]]:
    """Turns of a format whose labels carry a timecode in a fixed place (Rev, Descript, Trint). The timecode makes
    a label unmistakable: no repetition needed, except for lower-case names with text on the same line."""
    lines = text.splitlines()
    check_label_times(lines, source, patterns)
    return build_turns(lines, find_timed_labels(lines, patterns), source)


def find_timed_labels(lines: list[str], patterns: tuple[re.Pattern[str], ...]) -> dict[int, Label]:
    labels = {index: label for index, line in enumerate(lines) if (label := timed_label(line, patterns))}
    return drop_lowercase_one_offs(labels)


def timed_label(line: str, patterns: tuple[re.Pattern[str], ...]) -> Label | None:
    match = match_timed_label(line, patterns)
    start = parse_time(match.group("time")) if match else None
    if match is None or start is None:
        return None
    return Label(speaker=match.group("name").strip(), start=start, body=match.group("body") or "")


def check_label_times(lines: list[str], source: str, patterns: tuple[re.Pattern[str], ...]) -> None:
    """A label whose time cannot be read ("Anna (00:99:05):") is a damaged file: say where, rather than glue the
    label into the previous speaker's words."""
    for index, line in enumerate(lines):
        match = match_timed_label(line, patterns)
        if match and parse_time(match.group("time")) is None:
            raise PersonaForgeError(f"{source}:{index + 1}: cannot read the time '{match.group('time')}' in the"
                                    " speaker label; write it as MM:SS or HH:MM:SS")


def drop_lowercase_one_offs(labels: dict[int, Label]) -> dict[int, Label]:
    """A lower-case label used once with text after it ("he said (12:31): yes.") is more likely a sentence than a
    person; alone on its line ("audience member (front) (01:02:03):") it is a label."""
    counts: dict[str, int] = {}
    for label in labels.values():
        key = label.speaker.casefold()
        counts[key] = counts.get(key, 0) + 1
    return {i: label for i, label in labels.items()
            if label_style(label.speaker) != "lower" or counts[label.speaker.casefold()] > 1 or not label.body}


def build_turns(lines: list[str], labels: dict[int, Label], source: str,
                skip: set[int] | None = None) -> tuple[list[Turn], list[str]]:
    """Turns from label lines (0-based ``labels``) and the unlabelled lines after them.

    Lines before the first label are header lines (counted in a warning); headings, bracketed notes, timecodes and
    the ``skip`` lines (notes the format recognised) are never glued into speech.
    """
    turns: list[Turn] = []
    current: Turn | None = None
    pending_time: float | None = None
    header = dropped = 0
    for index, raw in enumerate(lines):
        stripped = raw.strip()
        label = labels.get(index)
        if label is not None:
            start = label.start if label.start is not None else pending_time
            current = Turn(speaker=label.speaker, text=label.body.strip(), start=start, source=source,
                           line=index + 1, kind=SPEECH)
            turns.append(current)
            pending_time = None
            continue
        if not stripped:
            if current is not None and current.text and not current.text.endswith("\n"):
                current.text += "\n"  # a paragraph break inside the turn
            continue
        if (time := timecode(stripped)) is not None:
            pending_time = time
            continue
        if _NOTE_LINE.match(stripped):
            continue
        if current is None:
            header += 1
            continue
        if (skip and index in skip) or is_heading(stripped):
            dropped += 1
            continue
        current.text += (" " if current.text and not current.text.endswith("\n") else "") + stripped
        current.end_line = index + 1
    result = []
    for turn in turns:
        turn.text = clean_speech(turn.text)
        if turn.text:
            result.append(turn)
    warnings = []
    if header:
        warnings.append(f"{source}: ignored {header} line(s) before the first speaker label")
    if dropped:
        warnings.append(f"{source}: dropped {dropped} line(s) that were not speech (headings, notes)")
    return result, warnings
