"""Segments → records of five types, each in both training formats (plain prompt/completion and chat).

A record is written only when it is good: a question a real interviewer would ask this person, an
answer that responds to it, and one speaker's own self-contained words. Everything else is dropped and
counted by reason in :class:`Quality`, which the dataset card reports.

- extracted: a real question and the reply; a later chunk of a long turn with a continuation prompt
  ("Go on.") and the chunk before it as the persona's earlier turn; a chunk nobody asked for with the card
  topic question that fits it (or no record).
- transformed: a real question said another way, with the same answer (content and order kept).
- hypothetical: the card's topic and marker questions, each answered by the persona's passage that fits it.
- contrastive: the same question put to every persona, each answered by its own passage that fits it.
- negative: a question from another persona's domain, answered with the card's in-character deflection.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from personaforge.config import RECORD_TYPES, DataConfig
from personaforge.dataset.guards import INLINE_TIMESTAMP
from personaforge.dataset.questions import MARKER_QUESTION, is_personal, marker_is_saying
from personaforge.dataset.retrieval import Passage, Passages, Retriever, key_terms
from personaforge.dataset.segments import Segment
from personaforge.dataset.split import Split
from personaforge.dataset.text import (content_stems, norm_words, question_needs_context, refers_elsewhere,
                                      sentences, speaks_to_the_room, without_handover)
from personaforge.dataset.writers import TEMPLATE, TemplateWriter
from personaforge.personas import PersonaCard, Roster, slugify
from personaforge.prompting import Exchange, chat_messages, plain_completion, plain_prompt

TRANSCRIPT = "transcript"  # generator tag of text taken verbatim from a transcript

NO_QUESTION = "no natural question"
NO_PASSAGE = "no fitting passage"
DANGLING = "dangling start"
MIXED = "mixed speakers"
DUPLICATE = "duplicate"
DROP_REASONS = (NO_QUESTION, NO_PASSAGE, DANGLING, MIXED, DUPLICATE)
MIN_CONTINUATION_WORDS = 12


@dataclass
class Record:
    id: str
    persona: PersonaCard
    type: str
    segment: str
    source: dict
    generator: str
    question: str
    answer: str
    context: list[Exchange] = field(default_factory=list)
    asked_by: str = "transcript"  # where the question comes from: transcript, continuation, topic, marker, ...
    fit: float | None = None  # question/answer fit when it was measured

    def to_json(self) -> dict:
        system = self.persona.prompt_text()
        source = dict(self.source)
        source["question"] = self.asked_by
        if self.fit is not None:
            source["fit"] = self.fit
        return {
            "id": self.id,
            "persona": self.persona.name,
            "type": self.type,
            "segment": self.segment,
            "source": source,
            "generator": self.generator,
            "prompt": plain_prompt(system, self.persona.name, self.question, self.context),
            "completion": plain_completion(self.answer),
            "messages": chat_messages(system, self.question, self.context, self.answer),
        }


@dataclass
class TypeQuality:
    generated: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    fits: list[float] = field(default_factory=list)
    asked_by: Counter = field(default_factory=Counter)


@dataclass
class Quality:
    """What was generated, kept and dropped (by reason), per record type."""

    types: dict[str, TypeQuality] = field(default_factory=lambda: {t: TypeQuality() for t in RECORD_TYPES})

    def generated(self, record_type: str) -> None:
        self.types[record_type].generated += 1

    def drop(self, record_type: str, reason: str) -> None:
        self.types[record_type].dropped[reason] += 1

    def keep(self, record: Record) -> None:
        entry = self.types[record.type]
        entry.kept += 1
        entry.asked_by[record.asked_by] += 1
        if record.fit is not None:
            entry.fits.append(record.fit)

    def undo_keep(self, record: Record, reason: str) -> None:
        entry = self.types[record.type]
        entry.kept -= 1
        entry.asked_by[record.asked_by] -= 1
        if record.fit is not None:
            entry.fits.remove(record.fit)
        entry.dropped[reason] += 1


@dataclass
class RecordSet:
    train: list[Record]
    eval: list[Record]
    held_out_derived: int  # derived records of eval segments, not written (eval holds real words)
    quality: Quality = field(default_factory=Quality)


def _source(segment: Segment, passage: Passage | None = None) -> dict:
    source = {"file": segment.source, "lines": list(segment.lines), "start": segment.start, "end": segment.end,
              "chunk": segment.chunk}
    if passage is not None and passage.skipped:
        source["skipped_sentences"] = passage.skipped  # opening sentences that referred back were left out
    return source


def _mixed(answer: str) -> bool:
    """A timestamp inside an answer means a transcript label slipped in (the segment guard cut the rest)."""
    return INLINE_TIMESTAMP.search(answer) is not None


def generate_records(segments: list[Segment], split: Split, roster: Roster, config: DataConfig,
                     writer: TemplateWriter, retriever: Retriever,
                     tick: Callable[[], None] = lambda: None) -> RecordSet:
    quality = Quality()
    train: list[Record] = []
    held: list[Record] = []
    dropped = 0
    seen: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()

    def keep(record: Record) -> bool:
        nonlocal dropped
        if _mixed(record.answer):
            quality.drop(record.type, MIXED)
            return False
        key = (record.persona.name, tuple(norm_words(record.question)), tuple(norm_words(record.answer)))
        if key in seen:
            quality.drop(record.type, DUPLICATE)
            return False
        if not split.is_eval(record.segment):
            train.append(record)
        elif record.type in config.eval_types:
            held.append(record)
        else:
            dropped += 1
            return False
        seen.add(key)
        quality.keep(record)
        return True

    def context_for(segment: Segment) -> list[Exchange]:
        # A training prompt never carries a held-out answer as context.
        if split.is_eval(segment.id):
            return [exchange for _, exchange in segment.context]
        return [exchange for sid, exchange in segment.context if not split.is_eval(sid)]

    # ---------------------------------------------------------------------------------------- extracted
    passages = Passages()
    extracted: dict[str, Record] = {}
    spoken: dict[str, Exchange] = {}  # exchanges not written themselves, still a later chunk's earlier turn
    # Chunks nobody asked for are scored against the card's topic questions: embed them all in one go.
    orphans = [s for s in segments if s.question is None and s.previous is None]
    retriever.prefetch(
        [q for card in roster.personas for q in writer.topic_questions(card)],
        [p.text for s in orphans for t in roster.persona(s.persona).topics
         if (p := passages.passage(s, key_terms(t))) is not None])
    for segment in segments:
        card = roster.persona(segment.persona)
        quality.generated("extracted")
        record = _extracted(segment, card, context_for(segment), extracted, spoken, writer, passages, quality)
        if record is not None and keep(record):
            extracted[segment.id] = record
        tick()

    # -------------------------------------------------------------------------------------- transformed
    if config.transformed:
        for segment in segments:
            record = extracted.get(segment.id)
            if record is None or record.asked_by != TRANSCRIPT:
                continue  # only a real question is said another way
            if split.is_eval(segment.id) and "transformed" not in config.eval_types:
                dropped += 1
                continue
            quality.generated("transformed")
            if refers_elsewhere(record.question):
                # a follow-up ("How do you turn it outward?") stays as it was asked, with the exchange it follows
                quality.drop("transformed", DANGLING)
                continue
            rephrased = writer.rephrase_question(record.question, record.answer, record.persona, segment.id)
            if rephrased is None:
                quality.drop("transformed", NO_QUESTION)
                continue
            question, generator = rephrased
            keep(Record(f"transformed:{segment.id}", record.persona, "transformed", segment.id, record.source,
                        generator, question, record.answer, record.context, "rephrased"))

    # ------------------------------------------------------------- hypothetical, contrastive: retrieval
    usable_segments: dict[tuple[str, str], list[Segment]] = {}

    def usable(persona: str, record_type: str) -> list[Segment]:
        key = (persona, record_type)
        if key not in usable_segments:
            usable_segments[key] = [s for s in segments if s.persona == persona
                                    and (record_type in config.eval_types or not split.is_eval(s.id))]
        return usable_segments[key]

    def candidates(card: PersonaCard, record_type: str, about: frozenset[str]) -> list[Passage]:
        return [p for p in (passages.passage(s, about)
                            for s in usable(card.name, record_type) if s.id not in used[card.name])
                if p is not None]

    used: dict[str, set[str]] = {card.name: set() for card in roster.personas}

    def best_passage(card: PersonaCard, record_type: str, question: str, about: frozenset[str],
                     topic: str | None = None) -> tuple[float, Passage] | None:
        """The passage that fits the question best, if it fits well enough. It has to speak of ``about`` in its
        first two sentences (an answer starts on the subject it was asked about) and, for a card topic, be more
        about that topic than about any other topic of the card."""
        if not about:
            return None
        for fit, passage in retriever.ranked(question, candidates(card, record_type, about)):
            if fit < retriever.threshold:
                break
            if topic is None or retriever.best_topic(card.topics, passage.text) == topic:
                return fit, passage
        return None

    # Every passage that may be asked about, embedded in one go.
    wanted_questions: list[str] = []
    wanted_texts: list[str] = []
    for card in roster.personas:
        wanted_questions.extend(writer.topic_questions(card))
        for topic in card.topics:
            pool = candidates(card, "hypothetical", key_terms(topic))
            for number in range(config.hypothetical_per_topic):
                question = writer.topic_template(topic, number, f"{card.slug}:{topic}")
                wanted_texts.extend(p.text for p in retriever.shortlist(question, pool))
        for question in config.contrastive_questions:
            pool = candidates(card, "contrastive", key_terms(question))
            wanted_questions.append(question)
            wanted_texts.extend(p.text for p in retriever.shortlist(question, pool) if pool)
    retriever.prefetch(wanted_questions, wanted_texts)

    for card in roster.personas:
        for topic in card.topics:
            for number in range(config.hypothetical_per_topic):
                quality.generated("hypothetical")
                question = writer.topic_template(topic, number, f"{card.slug}:{topic}")
                found = best_passage(card, "hypothetical", question, key_terms(topic), topic)
                if found is None:
                    quality.drop("hypothetical", NO_PASSAGE)
                    continue
                fit, passage = found
                question, fit, generator = writer.ask_for_passage(card, topic, question, passage.text, fit,
                                                                  f"{passage.segment.id}:{topic}")
                used[card.name].add(passage.segment.id)
                keep(Record(f"hypothetical:{passage.segment.id}:{slugify(topic)}", card, "hypothetical",
                            passage.segment.id, _source(passage.segment, passage), generator, question, passage.text,
                            asked_by="topic", fit=fit))
            tick()
        for marker in card.markers:
            if not marker_is_saying(marker):
                continue
            quality.generated("hypothetical")
            question = MARKER_QUESTION.format(marker=marker)
            holding = [p for p in (passages.passage(s)
                                   for s in usable(card.name, "hypothetical") if s.id not in used[card.name])
                       if p is not None and marker.casefold() in " ".join(sentences(p.text)[:2]).casefold()]
            ranked = retriever.ranked(question, holding)
            if not ranked or ranked[0][0] < retriever.threshold:
                quality.drop("hypothetical", NO_PASSAGE)
                continue
            fit, passage = ranked[0]
            used[card.name].add(passage.segment.id)
            keep(Record(f"hypothetical:{passage.segment.id}:{slugify(marker)}", card, "hypothetical",
                        passage.segment.id, _source(passage.segment, passage), TEMPLATE, question, passage.text,
                        asked_by="marker", fit=fit))

    for number, question in enumerate(config.contrastive_questions):
        for card in roster.personas:
            quality.generated("contrastive")
            found = best_passage(card, "contrastive", question, key_terms(question))
            if found is None:
                quality.drop("contrastive", NO_PASSAGE)
                continue
            fit, passage = found
            used[card.name].add(passage.segment.id)
            keep(Record(f"contrastive:{passage.segment.id}:q{number}", card, "contrastive", passage.segment.id,
                        _source(passage.segment, passage), TEMPLATE, question, passage.text,
                        asked_by="contrastive", fit=fit))
        tick()

    # ---------------------------------------------------------------------------------------- negative
    for card in roster.personas:
        own_terms = set().union(*(set(content_stems(t)) for t in card.topics)) if card.topics else set()
        for other in roster.personas:
            if other.name == card.name:
                continue
            # another person's own topics ("his grandfather") cannot be put to this one as they stand
            foreign = [t for t in other.topics if not (set(content_stems(t)) & own_terms) and not is_personal(t)]
            for topic in foreign[: config.negatives_per_pair]:
                quality.generated("negative")
                key = f"negative:{card.slug}:{slugify(topic)}"
                question, answer, generator = writer.deflection(card, topic, other, key)
                keep(Record(key, card, "negative", key, {"card": roster.source_of(card.name)},
                            generator, question, answer, asked_by="deflection"))
    return RecordSet(train, held, dropped, quality)


def _extracted(segment: Segment, card: PersonaCard, context: list[Exchange], kept: dict[str, Record],
               spoken: dict[str, Exchange], writer: TemplateWriter, passages: Passages,
               quality: Quality) -> Record | None:
    source = _source(segment)
    if segment.question is not None:
        if not context and question_needs_context(segment.question):
            # "Did you tell the family that?" with nothing before it. The reply is still the person's own words,
            # so it can be the earlier turn of the chunk that follows it.
            spoken[segment.id] = Exchange(segment.question, segment.answer)
            quality.drop("extracted", DANGLING)
            return None
        return Record(f"extracted:{segment.id}", card, "extracted", segment.id, source, TRANSCRIPT,
                      segment.question, segment.answer, context)
    earlier = kept.get(segment.previous) if segment.previous else None
    before = Exchange(earlier.question, earlier.answer) if earlier is not None else spoken.get(segment.previous or "")
    if before is not None:
        # Monologue goes on: the chunk before is the persona's earlier turn, and the interviewer says "Go on."
        answer = without_handover(segment.answer, MIN_CONTINUATION_WORDS)
        if answer is None or speaks_to_the_room(sentences(answer)[0]):
            # a question to someone else, or words to someone in the room ("Jonas, take us wider"): "Go on." does
            # not ask for that
            quality.drop("extracted", NO_QUESTION)
            return None
        question = writer.continuation(answer, segment.id)
        return Record(f"extracted:{segment.id}", card, "extracted", segment.id, source, TEMPLATE, question,
                      answer, [before], "continuation")
    # Nobody asked for this chunk: it gets the card topic question that fits it, from where it can stand alone.
    whole = passages.passage(segment)
    if whole is None:
        quality.drop("extracted", DANGLING)
        return None
    options = [(topic, p) for topic, p in ((t, passages.passage(segment, key_terms(t))) for t in card.topics)
               if p is not None]
    found = writer.topic_question(card, [(topic, p.text) for topic, p in options], whole.text, segment.id)
    if found is None:
        quality.drop("extracted", NO_QUESTION)
        return None
    question, answer, fit, generator = found
    passage = next((p for _, p in options if p.text == answer), whole)
    return Record(f"extracted:{segment.id}", card, "extracted", segment.id, _source(segment, passage), generator,
                  question, answer, [], "topic", fit)


def sample_ids(records: list[dict], per_type: int, seed: int) -> dict[str, list[str]]:
    """``per_type`` random record ids of each type (seeded), for the card's examples."""
    chosen: dict[str, list[str]] = {}
    for record_type in RECORD_TYPES:
        ids = sorted(r["id"] for r in records if r["type"] == record_type)
        rng = random.Random(f"{seed}:card-sample:{record_type}")
        chosen[record_type] = sorted(rng.sample(ids, min(per_type, len(ids))))
    return chosen
