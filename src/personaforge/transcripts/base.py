"""The parsed form every transcript format produces, and helpers the parsers share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SPEECH = "speech"
ONSCREEN = "onscreen"  # text shown on screen: never a persona's answer
SUBTITLE = "subtitle"  # a translation of the preceding speaker's words: never a persona's answer


@dataclass
class Turn:
    speaker: str
    text: str
    start: float | None
    source: str
    line: int
    end_line: int = 0
    kind: str = SPEECH

    def __post_init__(self) -> None:
        if not self.end_line:
            self.end_line = self.line

    @property
    def words(self) -> int:
        return len(self.text.split())


@dataclass
class Transcript:
    source: str
    format: str
    encoding: str
    turns: list[Turn]
    warnings: list[str] = field(default_factory=list)


_BRACKETED = re.compile(r"\[[^\[\]\n]*\]")
_SPACES = re.compile(r"[ \t\u00a0]+")


def clean_speech(text: str) -> str:
    """Drop bracketed notes ([laughs], [Applause], [?], [inaudible 00:14:02]) and tidy whitespace."""
    text = _BRACKETED.sub(" ", text)
    paragraphs = [_SPACES.sub(" ", p).strip() for p in text.split("\n")]
    text = "\n".join(p for p in paragraphs if p)
    # Removing a note can leave "word ," or "( )": tidy the spacing it left behind.
    text = re.sub(r" +([,.;:!?])", r"\1", text)
    return text.strip()


_TIME = re.compile(r"^(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?:[.,](\d{1,3}))?$")


def parse_time(value: str) -> float | None:
    """'1:02:03', '05:45', '00:05:45.500' or '00:00:01,000' → seconds; None if it is not a time."""
    match = _TIME.match(value.strip())
    if not match:
        return None
    hours, minutes, seconds, fraction = match.groups()
    if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    total = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    if fraction:
        total += int(fraction) / (10 ** len(fraction))
    return float(total)


def looks_like_name(label: str) -> bool:
    """A speaker label: short, starts with a letter, not a sentence."""
    label = label.strip()
    if not label or len(label) > 48 or len(label.split()) > 6:
        return False
    if not label[0].isalpha():
        return False
    if label[-1] in ".!?,;" or '"' in label:
        return False
    return bool(re.fullmatch(r"[\w .'’()\-&/]+", label))


def merge_paragraph(turn: Turn, text: str, line: int) -> None:
    turn.text = f"{turn.text}\n{text}" if turn.text else text
    turn.end_line = line
