"""Transcripts → segments: each piece of a persona's speech that becomes one extracted record.

A segment is either the persona's reply to a question (a turn by anyone else just before it) or a
focused chunk of monologue that still needs a question written for it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from personaforge.config import DataConfig
from personaforge.dataset.redact import redact_introductions, role_phrase
from personaforge.dataset.text import chunk_text, sentences, word_count
from personaforge.personas import PersonaCard, Roster, slugify
from personaforge.prompting import Exchange
from personaforge.transcripts import SPEECH, SUBTITLE, Transcript

# A turn without a question mark still counts as a question when it is this short and not a
# persona's own remark ("Tell me about the frost.").
SHORT_PROMPT_WORDS = 40
# Long preambles are cut to the sentences that lead up to the actual question.
QUESTION_MAX_WORDS = 60


@dataclass
class Unit:
    """Consecutive speech turns by one speaker, merged."""

    speaker: str
    card: PersonaCard | None
    text: str
    line: int
    end_line: int
    start: float | None
    translation: str = ""


@dataclass
class Segment:
    id: str
    persona: str
    source: str
    lines: tuple[int, int]
    start: float | None
    end: float | None
    answer: str
    question: str | None = None  # None: a monologue chunk that needs a written question
    asker: str | None = None
    chunk: int = 0
    context: list[tuple[str, Exchange]] = field(default_factory=list)  # (segment id, exchange)

    @property
    def kind(self) -> str:
        return "qa" if self.question is not None else "monologue"


@dataclass
class SpeakerStats:
    turns: int = 0
    words: int = 0
    files: set[str] = field(default_factory=set)


@dataclass
class SegmentResult:
    segments: list[Segment]
    unassigned: dict[str, SpeakerStats]
    skipped_short: int


def units_of(transcript: Transcript, roster: Roster) -> list[Unit]:
    units: list[Unit] = []
    for turn in transcript.turns:
        if turn.kind == SUBTITLE:
            if units and units[-1].speaker == turn.speaker:
                units[-1].translation = f"{units[-1].translation} {turn.text}".strip()
            continue
        if turn.kind != SPEECH:
            continue
        if units and units[-1].speaker.casefold() == turn.speaker.casefold():
            units[-1].text += "\n" + turn.text
            units[-1].end_line = turn.end_line
            continue
        units.append(Unit(turn.speaker, roster.card_for(turn.speaker), turn.text, turn.line, turn.end_line,
                          turn.start))
    return units


def question_from(unit: Unit) -> str | None:
    """The question a turn puts, or None if the turn is not a question."""
    text = unit.translation or unit.text
    if "?" not in text:
        is_persona = unit.card is not None and unit.card.role == "persona"
        return " ".join(text.split()) if word_count(text) <= SHORT_PROMPT_WORDS and not is_persona else None
    parts = sentences(text)
    last = max(i for i, s in enumerate(parts) if "?" in s)
    chosen = [parts[last]]
    for sentence in reversed(parts[:last]):
        if word_count(" ".join(chosen)) + word_count(sentence) > QUESTION_MAX_WORDS:
            break
        chosen.insert(0, sentence)
    return " ".join(" ".join(chosen).split())


def _trim_words(text: str, limit: int) -> str:
    kept: list[str] = []
    for sentence in sentences(text):
        if kept and word_count(" ".join(kept)) + word_count(sentence) > limit:
            break
        kept.append(sentence)
    return " ".join(kept)


def _source_keys(transcripts: list[Transcript]) -> dict[str, str]:
    """Short, stable ids for source files: the file stem, or the whole path when stems collide."""
    stems = defaultdict(list)
    for transcript in transcripts:
        stems[slugify(PurePosixPath(transcript.source).stem)].append(transcript.source)
    keys = {}
    for stem, sources in stems.items():
        for source in sources:
            keys[source] = stem if len(sources) == 1 else slugify(source)
    return keys


def build_segments(transcripts: list[Transcript], roster: Roster, config: DataConfig) -> SegmentResult:
    segments: list[Segment] = []
    unassigned: dict[str, SpeakerStats] = defaultdict(SpeakerStats)
    skipped = 0
    keys = _source_keys(transcripts)
    for transcript in transcripts:
        units = units_of(transcript, roster)
        threads: dict[str, list[tuple[str, Exchange]]] = defaultdict(list)
        for index, unit in enumerate(units):
            if unit.card is None:
                stats = unassigned[" ".join(unit.speaker.split())]
                stats.turns += 1
                stats.words += word_count(unit.text)
                stats.files.add(transcript.source)
            if unit.card is None or unit.card.role != "persona":
                continue
            persona = unit.card.name
            previous = units[index - 1] if index else None
            question = question_from(previous) if previous is not None else None
            if question is not None and config.redact_others and (previous.card is None or previous.card.role != "persona"):
                question = redact_introductions(question, role_phrase(previous.speaker, previous.card))
            if word_count(unit.text) <= config.chunk_max_words:
                chunks = [" ".join(unit.text.split())]
            else:
                chunks = chunk_text(unit.text, config.chunk_min_words, config.chunk_max_words)
            if question is None:
                threads[persona].clear()  # a monologue breaks the conversational thread
            following = units[index + 1].start if index + 1 < len(units) else None
            base = f"{keys[transcript.source]}-L{unit.line}"
            for k, chunk in enumerate(chunks):
                asked = question if k == 0 else None
                minimum = config.min_answer_words if asked is not None else max(config.min_answer_words, config.chunk_min_words // 2)
                if word_count(chunk) < minimum:
                    skipped += 1
                    continue
                segment = Segment(
                    id=base if len(chunks) == 1 else f"{base}-{k}",
                    persona=persona,
                    source=transcript.source,
                    lines=(unit.line, unit.end_line),
                    start=unit.start,
                    end=following,
                    answer=chunk,
                    question=asked,
                    asker=previous.speaker if asked is not None else None,
                    chunk=k,
                )
                if asked is not None:
                    segment.context = threads[persona][-config.context_turns:] if config.context_turns else []
                    threads[persona].append((segment.id, Exchange(asked, _trim_words(chunk, config.context_max_words))))
                segments.append(segment)
    return SegmentResult(segments, dict(unassigned), skipped)


SEGMENT_ID = re.compile(r"^[a-z0-9-]+-L\d+(-\d+)?$")
