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
    alternatives: list[str] = field(default_factory=list)  # other formats the content also fits (auto-detection)
    forced: bool = False  # the format came from --format, not from detection


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


# A trailing parenthetical qualifies a label: "audience member (front, in Danish)", "researcher (korean)",
# "Zuschauerin (2. Reihe)". It may hold commas, digits and any language's words, which a name may not.
_PARENTHETICAL = re.compile(r"^(?P<base>[^()]*?)\s*\((?P<note>[^()\n]{1,40})\)$")
# Lower-case words that may sit inside a capitalised name ("Ana de la Cruz", "Ibn al Haytham").
_PARTICLES = {"de", "da", "das", "del", "della", "di", "do", "dos", "du", "la", "le", "van", "von", "der", "den",
              "ter", "ten", "bin", "ibn", "al", "el", "y", "e", "of", "the", "and", "&"}
# Labels that introduce a note, a heading or metadata, not a person's speech.
NOT_SPEAKERS = {"note", "notes", "editor's note", "editor", "editors", "translation", "translator's note",
                "caption", "captions", "music", "source", "sources", "date", "time", "location", "place",
                "transcribed by", "transcriber", "transcript", "keywords", "summary", "title", "subject",
                "duration", "recorded", "audio", "video", "warning", "edit", "text on screen", "subtitle",
                "subtitles", "http", "https", "file", "tape", "part", "chapter", "section", "end",
                # production notes in documentary transcripts
                "b-roll", "broll", "editor note", "editors note", "production note", "scene", "shot", "camera",
                "sfx", "gfx", "graphic", "graphics", "archive", "insert", "lower third", "slate", "cutaway"}


def normalize(name: str) -> str:
    """A label compared without case, spacing or curly apostrophes."""
    return " ".join(name.replace("’", "'").split()).casefold()


_NOTE_PREFIX = re.compile(r"^\s*(?P<label>[^:\t]{1,40}):")


def is_note_line(line: str) -> bool:
    """'EDITOR NOTE: nettle story = cold open', 'b-roll: the hives': a production note, never speech."""
    match = _NOTE_PREFIX.match(line)
    return bool(match) and normalize(split_label(match.group("label"))[0]) in NOT_SPEAKERS


def split_label(label: str) -> tuple[str, str]:
    """'audience member (front, in Danish)' → ('audience member', 'front, in Danish'); else (label, '')."""
    label = label.strip()
    match = _PARENTHETICAL.match(label)
    if match and match.group("base").strip():
        return match.group("base").strip(), match.group("note").strip()
    return label, ""


def looks_like_name(label: str) -> bool:
    """A speaker label: short, starts with a letter, not a sentence; may end in a parenthetical qualifier."""
    label = label.strip()
    base, _ = split_label(label)
    if not base or len(base) > 48 or len(base.split()) > 6:
        return False
    if not base[0].isalpha():
        return False
    if base[-1] in ".!?,;" or '"' in base:
        return False
    return bool(re.fullmatch(r"[\w .'’()\-&/]+", base))


def name_shaped(label: str) -> bool:
    """Written the way labels are: every word capitalised ("Ms. Chen", "Ana de la Cruz", "SPEAKER_00") or an
    all-lower-case short label ("ruth", "audience member"). "There was one rule" is a sentence's opening."""
    base, _ = split_label(label)
    words = base.split()
    if not words or len(words) > 5:
        return False
    if base == base.lower():
        return len(words) <= 3 and base[0].isalpha()
    if words[-1][0].isalpha() and not words[-1][0].isupper():  # "Xyz de:" is a sentence; a name ends capitalised
        return False
    return all(not w[0].isalpha() or w[0].isupper() or w.lower() in _PARTICLES for w in words)


def label_style(label: str) -> str:
    """'caps' (INTERVIEWER, MS. CHEN), 'lower' (ruth) or 'title' (Ms. Chen)."""
    base, _ = split_label(label)
    letters = [c for c in base if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) > 1:
        return "caps"
    return "lower" if base == base.lower() else "title"


def merge_paragraph(turn: Turn, text: str, line: int) -> None:
    turn.text = f"{turn.text}\n{text}" if turn.text else text
    turn.end_line = line
