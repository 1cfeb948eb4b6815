"""Which passage answers a question: all-MiniLM-L6-v2 cosine between question and passage ("fit").

A passage is a contiguous run of one persona's own sentences (a segment's answer, from its first
sentence that can stand alone). A question is paired with a passage only when their fit reaches a
threshold calibrated on the real interviewer question → answer pairs of the same build.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from personaforge.dataset.questions import as_asked
from personaforge.dataset.salience import Salience
from personaforge.dataset.segments import Segment
from personaforge.dataset.text import (content_stems, dangling_start, enumeration_at, sentences, tells_a_story,
                                      unresolved_person, without_handover, word_count)
from personaforge.embeddings import Embedder

# Real pairs the threshold is calibrated on (a seeded sample when a build has more: embedding is the cost).
CALIBRATION_PAIRS = 80
# Fewer real pairs than this and the threshold is the default below.
MIN_CALIBRATION_PAIRS = 20
DEFAULT_THRESHOLD = 0.35
# The threshold is the fit that only this share of mismatched pairs (a real question with another answer of the
# same persona) reaches: a passage that fits as well as that is very unlikely to be an answer to something else.
MISMATCHED_ABOVE = 0.05
THRESHOLD_FLOOR = 0.30  # whatever the calibration finds
# A persona with more passages than this is searched in two steps: its passages that share the most
# (idf-weighted) words with the question, then fit over those; below it, fit over all of them.
FULL_POOL = 400
SHORTLIST = 16
MIN_PASSAGE_WORDS = 25
# Fit is measured on an answer's opening: the sentences that make up its first OPENING_WORDS words (at least
# one). An answer responds to a question where it starts; the opening is also what a reader judges first,
# and embedding it instead of the whole passage halves the cost.
OPENING_WORDS = 60


def opening(text: str, limit: int = OPENING_WORDS) -> str:
    """The sentences of ``text`` that fit in its first ``limit`` words (the first sentence at least)."""
    kept: list[str] = []
    count = 0
    for sentence in sentences(text):
        words = word_count(sentence)
        if kept and count + words > limit:
            break
        kept.append(sentence)
        count += words
    return " ".join(kept)


def question_fits(embedder: Embedder, question: str, texts: Sequence[str]) -> list[float]:
    """How well each text answers the question: MiniLM cosine of the question and the text's opening, rounded."""
    if not texts:
        return []
    vectors = embedder.embed([question, *(opening(t) for t in texts)])
    return [rounded(v) for v in vectors[1:] @ vectors[0]]


def topic_probe(topic: str) -> str:
    """The question a passage is scored with to tell which card topic it is most about."""
    return f"Tell me about {as_asked(topic)}."


def rounded(value: float) -> float:
    # Scores are compared and written rounded, so float noise in the last bits never flips a decision.
    return round(float(value), 3)


@dataclass(frozen=True)
class Passage:
    segment: Segment
    text: str
    skipped: int  # sentences left out at the start

    @property
    def persona(self) -> str:
        return self.segment.persona


# Words that say nothing about what a passage is about ("What does patience mean in your work?" is about
# patience, not about meaning or work).
GENERIC_TERMS = frozenset(content_stems("""work working worked job know knew known thing think mean means meant look
    looks looked like good best hard hardest year years life day days way ways something anything everything people
    person teach taught learn learned keep kept doing done feel felt happen happened make makes made most ever
    ordinary start started change changed part parts whole real really talk tell"""))


def key_terms(text: str) -> frozenset[str]:
    """What a phrase is about: its content words, each cut to six letters so "beekeeping" finds "beekeeper"."""
    return frozenset(stem[:6] for stem in content_stems(text) if stem not in GENERIC_TERMS)


class Passages:
    """A segment's sentences, which of them can open a passage, and what each is about, computed once."""

    def __init__(self) -> None:
        self._split: dict[str, tuple[list[str], list[bool], list[frozenset[str]]]] = {}

    def _of(self, segment: Segment) -> tuple[list[str], list[bool], list[frozenset[str]]]:
        found = self._split.get(segment.id)
        if found is None:
            parts = sentences(segment.answer)
            opens = [dangling_start(part, parts[i + 1] if i + 1 < len(parts) else "") is None
                     for i, part in enumerate(parts)]
            found = self._split[segment.id] = (parts, opens, [key_terms(part) for part in parts])
        return found

    def passage(self, segment: Segment, about: frozenset[str] | None = None,
                min_words: int = MIN_PASSAGE_WORDS) -> Passage | None:
        """The segment's answer from its start, or from a later paragraph, whichever comes first that can open a
        passage (a sentence in the middle of a paragraph continues the one before it). With ``about``, the
        opening must also speak of the subject in its first two sentences: of one of its terms, or of two when
        it has three or more ("mistakes and stage fright" is not about "stage")."""
        parts, opens, terms = self._of(segment)
        needed = 2 if about is not None and len(about) >= 3 else 1
        for index in segment.paragraphs:
            if index >= len(parts) or not opens[index]:
                continue  # a sentence that refers back
            if (segment.chunk or index) and tells_a_story(parts[index]):
                continue  # inside a turn, a sentence in the past tense is usually the middle of a story
            if about is not None:
                said = terms[index] | (terms[index + 1] if index + 1 < len(parts) else frozenset())
                if len(about & said) < needed:
                    continue
            chosen = parts[index:]
            for cut in (unresolved_person(chosen), enumeration_at(chosen)):
                if cut is not None:
                    # end before "she said ..." about somebody the passage never names, or "And third, ..."
                    chosen = chosen[:cut]
            text = without_handover(" ".join(chosen), min_words)
            if text is None:
                continue
            return Passage(segment, text, index)
        return None


@dataclass
class Calibration:
    threshold: float
    method: str
    pairs: int = 0
    real: dict[str, float] = field(default_factory=dict)
    mismatched: dict[str, float] = field(default_factory=dict)
    real_at_or_above: float = 0.0
    mismatched_at_or_above: float = 0.0

    def to_json(self) -> dict:
        return {"threshold": self.threshold, "method": self.method, "real_pairs": self.pairs,
                "real_fit": self.real, "mismatched_fit": self.mismatched,
                "real_at_or_above": self.real_at_or_above, "mismatched_at_or_above": self.mismatched_at_or_above}


def quantiles(values: Sequence[float]) -> dict[str, float]:
    if not len(values):
        return {}
    array = np.asarray(values, dtype=np.float64)
    return {name: rounded(np.quantile(array, q)) for name, q in
            (("p10", 0.1), ("p25", 0.25), ("p50", 0.5), ("p75", 0.75), ("p90", 0.9))}


class Retriever:
    def __init__(self, embedder: Embedder, salience: Salience) -> None:
        self.embedder = embedder
        self.salience = salience
        self.calibration = Calibration(DEFAULT_THRESHOLD, "default")

    @property
    def threshold(self) -> float:
        return self.calibration.threshold

    def fits(self, question: str, texts: Sequence[str]) -> list[float]:
        return question_fits(self.embedder, question, texts)

    def fit(self, question: str, text: str) -> float:
        return self.fits(question, [text])[0]

    def calibrate(self, segments: Iterable[Segment], seed: int) -> Calibration:
        """Fit of real question → answer pairs, and of the same questions with other answers of the persona.

        The threshold is the fit that only MISMATCHED_ABOVE of the mismatched pairs reach (never below
        THRESHOLD_FLOOR); the card also says what share of the real pairs reach it.
        """
        pairs = [(s.persona, s.question, s.answer) for s in segments if s.question is not None and s.chunk == 0]
        if len(pairs) < MIN_CALIBRATION_PAIRS:
            self.calibration = Calibration(DEFAULT_THRESHOLD, f"default: only {len(pairs)} real question/answer"
                                           f" pairs (calibration needs {MIN_CALIBRATION_PAIRS})", len(pairs))
            return self.calibration
        if len(pairs) > CALIBRATION_PAIRS:
            pairs = random.Random(f"{seed}:calibration").sample(pairs, CALIBRATION_PAIRS)
        by_persona: dict[str, list[int]] = {}
        for index, (persona, _, _) in enumerate(pairs):
            by_persona.setdefault(persona, []).append(index)
        self.embedder.embed([q for _, q, _ in pairs] + [opening(a) for _, _, a in pairs])  # one batch
        questions = self.embedder.embed([q for _, q, _ in pairs])
        answers = self.embedder.embed([opening(a) for _, _, a in pairs])
        real = [rounded(v) for v in np.sum(questions * answers, axis=1)]
        mismatched: list[float] = []
        for indices in by_persona.values():
            for offset in (1, 2, 3, 4):  # each question against four other answers of the same persona
                for position, index in enumerate(indices):
                    other = indices[(position + offset) % len(indices)]
                    if other != index:
                        mismatched.append(rounded(questions[index] @ answers[other]))
        if not mismatched:
            self.calibration = Calibration(DEFAULT_THRESHOLD, "default: no persona has two real pairs to mismatch",
                                           len(pairs), quantiles(real))
            return self.calibration
        real_array, mismatched_array = np.asarray(real), np.asarray(mismatched)
        found = rounded(np.quantile(mismatched_array, 1 - MISMATCHED_ABOVE, method="higher"))
        threshold = max(found, THRESHOLD_FLOOR)
        self.calibration = Calibration(
            threshold, f"the fit only {MISMATCHED_ABOVE:.0%} of mismatched pairs reach"
                       + (f" ({found:.3f}), raised to the floor" if found < THRESHOLD_FLOOR else ""),
            len(pairs), quantiles(real), quantiles(mismatched),
            rounded(np.mean(real_array >= threshold)), rounded(np.mean(mismatched_array >= threshold)))
        return self.calibration

    def prefetch(self, questions: Iterable[str], texts: Iterable[str]) -> None:
        """Embed many questions and passages at once: one large batch costs far less than many small ones."""
        self.embedder.embed(list(dict.fromkeys([*questions, *(opening(t) for t in texts)])))

    def best_topic(self, topics: Sequence[str], text: str) -> str | None:
        """The card topic a passage is most about (by the fit of "Tell me about {topic}.")."""
        if not topics:
            return None
        vectors = self.embedder.embed([*(topic_probe(t) for t in topics), opening(text)])
        scores = [rounded(v) for v in vectors[:-1] @ vectors[-1]]
        return topics[max(range(len(topics)), key=lambda i: (scores[i], -i))]

    def shortlist(self, question: str, passages: Sequence[Passage]) -> list[Passage]:
        """The passages worth embedding for a question (all of a small pool, else the lexical best)."""
        if len(passages) <= FULL_POOL:
            return list(passages)
        query = set(content_stems(question))
        scored = sorted(range(len(passages)), key=lambda i: (-self.salience.relevance(query, passages[i].text), i))
        return [passages[i] for i in scored[:SHORTLIST]]

    def ranked(self, question: str, passages: Sequence[Passage]) -> list[tuple[float, Passage]]:
        """(fit, passage) for the shortlisted passages, best first; ties keep pool order."""
        chosen = self.shortlist(question, passages)
        scores = self.fits(question, [p.text for p in chosen])
        order = sorted(range(len(chosen)), key=lambda i: (-scores[i], i))
        return [(scores[i], chosen[i]) for i in order]
