"""Transcripts → segments: each piece of a persona's speech that can become one extracted record.

A segment is either the persona's reply to a question (a turn by anyone else just before it) or a
chunk of a longer turn. Every chunk of one turn shares the turn's ``group``: the split keeps a turn
together, so a chunk's earlier chunk is always in the same split and can be its conversational context.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from personaforge.config import DataConfig
from personaforge.dataset.guards import LabelGuard
from personaforge.dataset.redact import redact_introductions, role_phrase
from personaforge.dataset.text import chunk_text, dangling_start, sentences, word_count
from personaforge.personas import PersonaCard, Roster, normalize_label, slugify
from personaforge.prompting import Exchange
from personaforge.transcripts import SPEECH, SUBTITLE, Transcript, Turn

# A turn without a question mark still counts as a question when it is this short and not a
# persona's own remark ("Tell me about the frost.").
SHORT_PROMPT_WORDS = 40
# Long preambles are cut to the sentences that lead up to the actual question.
QUESTION_MAX_WORDS = 60
# What the asker says after the question is kept up to this many words; a turn that goes on longer is no question.
TRAILING_MAX_WORDS = 30


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
    turns: list[Turn] = field(default_factory=list)


@dataclass
class Segment:
    id: str
    persona: str
    source: str
    lines: tuple[int, int]
    start: float | None
    end: float | None
    answer: str
    question: str | None = None  # the real question before the turn (first chunk only), else None
    asker: str | None = None
    chunk: int = 0
    context: list[tuple[str, Exchange]] = field(default_factory=list)  # (segment id, exchange)
    group: str = ""  # the turn: all its chunks go to the same split
    previous: str | None = None  # the chunk just before this one in the same turn
    dangling: str | None = None  # why the answer's first sentence needs what came before it
    paragraphs: tuple[int, ...] = (0,)  # indices of the answer's sentences that begin a paragraph

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
    warnings: list[str] = field(default_factory=list)
    later_chunks: int = 0  # chunks after a turn's first
    later_chunks_dangling: int = 0  # ...that still open with a sentence that refers back
    mixed_speakers: int = 0  # turns cut where another speaker's label or a timestamp showed up


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
            units[-1].turns.append(turn)
            continue
        units.append(Unit(turn.speaker, roster.card_for(turn.speaker), turn.text, turn.line, turn.end_line,
                          turn.start, turns=[turn]))
    return units


def question_from(unit: Unit) -> str | None:
    """The question a turn puts, or None if the turn is not a question.

    A long lead-in is cut to the sentences just before the question; what the asker adds after it stays
    ("Why did you come back? You had a flat." is answered as a whole), unless it runs on for long.
    """
    text = unit.translation or unit.text
    if "?" not in text:
        is_persona = unit.card is not None and unit.card.role == "persona"
        return " ".join(text.split()) if word_count(text) <= SHORT_PROMPT_WORDS and not is_persona else None
    parts = sentences(text)
    last = max(i for i, s in enumerate(parts) if "?" in s)
    after = parts[last + 1:]
    if word_count(" ".join(after)) > TRAILING_MAX_WORDS:
        return None  # the turn goes on well past its question: the reply answers something else
    chosen = [parts[last]]
    for sentence in reversed(parts[:last]):
        if word_count(" ".join(chosen)) + word_count(sentence) > QUESTION_MAX_WORDS:
            break
        chosen.insert(0, sentence)
    return " ".join(" ".join(chosen + after).split())


def _trim_words(text: str, limit: int) -> str:
    """The last sentences of ``text`` within ``limit`` words (the last one at least): a follow-up question
    refers to what was said last ("How do you turn it outward?")."""
    kept: list[str] = []
    for sentence in reversed(sentences(text)):
        if kept and word_count(" ".join(kept)) + word_count(sentence) > limit:
            break
        kept.insert(0, sentence)
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


def _clean_part(unit: Unit, guard: LabelGuard) -> tuple[list[str], str | None]:
    """The unit's turns up to the first line with another speaker's label or a timestamp, and "file:line: label"."""
    pieces: list[str] = []
    for turn in unit.turns:
        kept: list[str] = []
        for line in turn.text.split("\n"):
            found = guard.problem(line)
            if found:
                if kept:
                    pieces.append("\n".join(kept))
                return pieces, f"{turn.source}:{_line_of(turn, line)}: '{found}'"
            kept.append(line)
        pieces.append("\n".join(kept))
    return pieces, None


def _line_of(turn: Turn, text: str) -> int:
    """The file line of one line of a turn's text (the turn's first line when it cannot be found)."""
    wanted = " ".join(text.split())
    try:
        with open(turn.source, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if number > turn.end_line:
                    break
                if number >= turn.line and wanted and wanted in " ".join(line.split()):
                    return number
    except OSError:
        pass
    return turn.line


def build_segments(transcripts: list[Transcript], roster: Roster, config: DataConfig) -> SegmentResult:
    segments: list[Segment] = []
    unassigned: dict[str, SpeakerStats] = defaultdict(SpeakerStats)
    skipped = 0
    warnings: list[str] = []
    later = later_dangling = mixed = 0
    keys = _source_keys(transcripts)
    labels = set(roster.known_labels) | {normalize_label(t.speaker) for tr in transcripts for t in tr.turns}
    guard = LabelGuard(labels)
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
            if question is not None and guard.text_problem(question):
                question = None  # a question with a label inside is not one person's question
            if question is not None and config.redact_others and (previous.card is None or previous.card.role != "persona"):
                question = redact_introductions(question, role_phrase(previous.speaker, previous.card))
            pieces, problem = _clean_part(unit, guard)
            text = "\n".join(pieces)
            if problem:
                warnings.append(f"{problem}: another speaker's label or a timestamp inside {persona}'s turn;"
                                " the words from there on were left out of the records (check the transcript)")
            mixed += problem is not None
            chunks = _turn_chunks(pieces, config)
            opening_sentences = {sentences(paragraph)[0] for paragraph in text.split("\n") if paragraph.strip()}
            if question is None:
                threads[persona].clear()  # a monologue breaks the conversational thread
            following = units[index + 1].start if index + 1 < len(units) else None
            base = f"{keys[transcript.source]}-L{unit.line}"
            previous_id: str | None = None
            for k, chunk in enumerate(chunks):
                asked = question if k == 0 else None
                minimum = config.min_answer_words if asked is not None else max(config.min_answer_words, config.chunk_min_words // 2)
                if word_count(chunk) < minimum:
                    skipped += 1
                    previous_id = None  # the chain of chunks is broken
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
                    group=base,
                    previous=previous_id,
                    dangling=dangling_start(sentences(chunk)[0]),
                    paragraphs=tuple(i for i, part in enumerate(sentences(chunk)) if i == 0 or part in opening_sentences),
                )
                if k > 0:
                    later += 1
                    later_dangling += segment.dangling is not None
                if asked is not None:
                    segment.context = threads[persona][-config.context_turns:] if config.context_turns else []
                    threads[persona].append((segment.id, Exchange(asked, _trim_words(chunk, config.context_max_words))))
                segments.append(segment)
                previous_id = segment.id
    return SegmentResult(segments, dict(unassigned), skipped, warnings, later, later_dangling, mixed)


def _turn_chunks(pieces: list[str], config: DataConfig) -> list[str]:
    """Chunks of a speaker's consecutive turns. A new turn by the same speaker comes after a cut in the recording
    (a timecode, a note, a scene heading) or a pause in which the speaker turned to someone else, so a chunk
    never runs across it; a turn too short for a chunk of its own is left out (counted as short)."""
    return [chunk for piece in pieces if piece.strip() for chunk in _chunks(piece, config)]


def _chunks(text: str, config: DataConfig) -> list[str]:
    if not text.strip():
        return []
    if word_count(text) <= config.chunk_max_words:
        return [" ".join(text.split())]
    return chunk_text(text, config.chunk_min_words, config.chunk_max_words)


SEGMENT_ID = re.compile(r"^[a-z0-9-]+-L\d+(-\d+)?$")
