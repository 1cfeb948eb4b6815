"""On the bundled samples, no persona's answer contains another speaker's words.

The labels are found here with deliberately loose patterns of our own (any short line ending in a time, a tabbed
name, a name alone on its line, a `<v Name>` voice or `NAME:` cue, an on-screen or subtitle block), not with the
parsers' rules, so a label the parser
fails to recognise (as Otter's "audience member (front, in Danish)  1:01:18" once was) shows up as that speaker's
words inside a persona's turn.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from personaforge.personas import Roster, load_cards
from personaforge.transcripts import SPEECH, discover, parse_file
from personaforge.transcripts.base import clean_speech

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MIN_WORDS = 6  # shorter sentences ("Thank you.") may honestly be said by two people

TEXT_LABELS = [
    re.compile(r"^(?P<label>\S.{0,70}?)\s+(?:\d{1,2}:)?\d{1,2}:\d{2}\s*$"),  # Otter: name, then a time
    re.compile(r"^(?:\d{1,2}:)?\d{1,2}:\d{2}\s+(?P<label>\S.{0,70}?):?\s*$"),  # Otter: time, then a name
    re.compile(r"^(?P<label>(?:text on screen|subtitles?)\b[^:]{0,40}):\s*(?P<text>.*)$", re.IGNORECASE),
    re.compile(r"^(?P<label>[^\t\s][^\t]{0,60})\t(?P<text>.*)$"),  # tab-labelled
    re.compile(r"^(?P<label>[^\t:]{1,60}):\s*$"),  # a name alone with a colon
    re.compile(r"^(?P<label>[^\W\d](?:[\w'’ -]|\([^()]*\)){0,40})$"),  # a name alone (no sentence punctuation)
]
CUE_LABELS = [
    re.compile(r"<v(?:\.[^ >]*)?\s+(?P<label>[^>]+)>(?P<text>.*?)(?:</v>|$)"),  # WebVTT voice
    re.compile(r"^-?\s*(?P<label>[A-Z][\w .'’-]{0,40}):\s+(?P<text>.+)$"),  # "SAM: text" in a cue
]
CUE_FRAMING = re.compile(r"^(WEBVTT.*|\d+|[\d:.,]+\s*-->.*)$")


def _label_match(line: str, cue: bool) -> re.Match[str] | None:
    for pattern in CUE_LABELS if cue else TEXT_LABELS:
        match = pattern.match(line)
        if match and (cue or len(match.group("label").split()) <= 6):
            return match
    return None


def labelled_chunks(path: Path) -> list[tuple[str, str]]:
    """(label, text) for every stretch of the file, split at anything that might be a label."""
    cue = path.suffix in (".vtt", ".srt")
    chunks: list[tuple[str, list[str]]] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or (cue and CUE_FRAMING.match(line)):
            continue
        match = None if raw.startswith(("\t", "    ")) else _label_match(line, cue)
        if match:
            chunks.append((match.group("label").strip(), [match.groupdict().get("text") or ""]))
        elif chunks:
            chunks[-1][1].append(line)
    return [(label, " ".join(lines)) for label, lines in chunks]


def sentences(text: str) -> list[str]:
    text = " ".join(clean_speech(text).split())
    return [s for s in re.split(r"(?<=[.?!])\s+", text) if len(s.split()) >= MIN_WORDS]


@pytest.fixture(scope="module")
def roster() -> Roster:
    return Roster(load_cards([SAMPLES / "personas"]))


@pytest.mark.parametrize("path", discover([SAMPLES / "transcripts"]), ids=lambda p: p.name)
def test_no_persona_turn_contains_another_speakers_words(path, roster):
    transcript = parse_file(path, known_speakers=roster.known_labels)

    def is_persona(label: str) -> bool:
        card = roster.card_for(label)
        return card is not None and card.role == "persona"

    persona_text = [(turn.speaker, turn.line, " ".join(turn.text.split())) for turn in transcript.turns
                    if turn.kind == SPEECH and is_persona(turn.speaker)]
    assert persona_text, "the sample should have persona turns"
    others = [(label, s) for label, text in labelled_chunks(path) if not is_persona(label) for s in sentences(text)]
    assert others, "the sample should have other speakers' words to check"
    leaks = [f"{label!r}'s words in {speaker}'s turn at line {line}: {sentence!r}"
             for label, sentence in others for speaker, line, text in persona_text if sentence in text]
    assert leaks == []
