"""Segments → records of five types, each in both training formats (plain prompt/completion and chat)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from personaforge.config import DataConfig
from personaforge.dataset.salience import Salience, query_terms
from personaforge.dataset.segments import Segment
from personaforge.dataset.split import Split
from personaforge.dataset.writers import TemplateWriter
from personaforge.personas import PersonaCard, Roster, slugify
from personaforge.prompting import Exchange, chat_messages, plain_completion, plain_prompt

TRANSCRIPT = "transcript"  # generator tag of text taken verbatim from a transcript


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

    def to_json(self) -> dict:
        system = self.persona.prompt_text()
        return {
            "id": self.id,
            "persona": self.persona.name,
            "type": self.type,
            "segment": self.segment,
            "source": self.source,
            "generator": self.generator,
            "prompt": plain_prompt(system, self.persona.name, self.question, self.context),
            "completion": plain_completion(self.answer),
            "messages": chat_messages(system, self.question, self.context, self.answer),
        }


@dataclass
class RecordSet:
    train: list[Record]
    eval: list[Record]
    held_out_derived: int  # derived records of eval segments, not written (eval holds real words)


def _source(segment: Segment) -> dict:
    return {"file": segment.source, "lines": list(segment.lines), "start": segment.start, "end": segment.end,
            "chunk": segment.chunk}


def generate_records(segments: list[Segment], split: Split, roster: Roster, config: DataConfig,
                     writer: TemplateWriter, salience: Salience, tick: Callable[[], None] = lambda: None) -> RecordSet:
    train: list[Record] = []
    held: list[Record] = []
    dropped = 0

    def keep(record: Record) -> None:
        nonlocal dropped
        if not split.is_eval(record.segment):
            train.append(record)
        elif record.type in config.eval_types:
            held.append(record)
        else:
            dropped += 1

    def context_for(segment: Segment) -> list[Exchange]:
        # A training prompt never carries a held-out answer as context.
        if split.is_eval(segment.id):
            return [exchange for _, exchange in segment.context]
        return [exchange for sid, exchange in segment.context if not split.is_eval(sid)]

    for segment in segments:
        card = roster.persona(segment.persona)
        if segment.question is not None:
            question, generator = segment.question, TRANSCRIPT
        else:
            question, generator = writer.question_for(segment.answer, card, segment.id)
        context = context_for(segment)
        keep(Record(f"extracted:{segment.id}", card, "extracted", segment.id, _source(segment), generator,
                    question, segment.answer, context))
        derived_wanted = not split.is_eval(segment.id) or "transformed" in config.eval_types
        if config.transformed and derived_wanted:
            new_question, q_gen = writer.rephrase_question(question, card, segment.id)
            new_answer, a_gen = writer.transform_answer(segment.answer, card, segment.id)
            generator = a_gen if a_gen != "template" else q_gen
            keep(Record(f"transformed:{segment.id}", card, "transformed", segment.id, _source(segment), generator,
                        new_question, new_answer, context))
        elif config.transformed:
            dropped += 1
        tick()

    by_persona: dict[str, list[Segment]] = {}
    for segment in segments:
        by_persona.setdefault(segment.persona, []).append(segment)

    def usable(persona: str, record_type: str) -> list[Segment]:
        pool = by_persona.get(persona, [])
        if record_type in config.eval_types:
            return pool
        return [s for s in pool if not split.is_eval(s.id)]

    def ranked(pool: list[Segment], query: str, used: set[str]) -> list[Segment]:
        terms = query_terms(query)
        scored = [(salience.relevance(terms, s.answer), s) for s in pool if s.id not in used]
        return [s for score, s in sorted(scored, key=lambda item: -item[0]) if score > 0]

    for card in roster.personas:
        # hypothetical: new questions on the persona's topics, answered from its own material
        used: set[str] = set()
        for topic in card.topics:
            for segment in ranked(usable(card.name, "hypothetical"), topic, used)[: config.hypothetical_per_topic]:
                used.add(segment.id)
                key = f"{segment.id}:{topic}"
                question, answer, generator = writer.hypothetical(card, topic, segment.answer, key)
                keep(Record(f"hypothetical:{segment.id}:{slugify(topic)}", card, "hypothetical", segment.id,
                            _source(segment), generator, question, answer))
            tick()

    # contrastive: the same question to every persona, each answering from its own material
    used_by: dict[str, set[str]] = {card.name: set() for card in roster.personas}
    for number, question in enumerate(config.contrastive_questions):
        for card in roster.personas:
            pool = usable(card.name, "contrastive")
            candidates = ranked(pool, question, used_by[card.name]) or [
                s for s in pool if s.id not in used_by[card.name]]
            if not candidates:
                continue
            segment = candidates[0]
            used_by[card.name].add(segment.id)
            answer, generator = writer.answer_from(card, question, segment.answer, f"{segment.id}:q{number}")
            keep(Record(f"contrastive:{segment.id}:q{number}", card, "contrastive", segment.id, _source(segment),
                        generator, question, answer))
        tick()

    # negative: a question from another persona's domain gets an in-character deflection
    for card in roster.personas:
        own_terms = set().union(*(query_terms(t) for t in card.topics)) if card.topics else set()
        for other in roster.personas:
            if other.name == card.name:
                continue
            foreign = [t for t in other.topics if not (query_terms(t) & own_terms)]
            for topic in foreign[: config.negatives_per_pair]:
                key = f"negative:{card.slug}:{slugify(topic)}"
                question, answer, generator = writer.deflection(card, topic, other, key)
                train.append(Record(key, card, "negative", key, {"card": roster.source_of(card.name)},
                                    generator, question, answer))
    return RecordSet(train, held, dropped)
