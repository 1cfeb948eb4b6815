"""Who writes the questions: deterministic offline rules (the default) or a teacher LLM, checked.

Answers are never written here: every answer is a contiguous passage of the persona's own words. What
is written is the question, and only in ways that are well-formed by construction (offline) or that pass
the same checks as everything else (teacher).
"""

from __future__ import annotations

import re
from collections import Counter

from personaforge.dataset.guards import INLINE_TIMESTAMP, LABEL_WITH_TIME
from personaforge.dataset.questions import (CONTINUATIONS, DEFAULT_DEFLECTION, NARRATIVE_CONTINUATIONS,
                                            NEGATIVE_QUESTIONS, TOPIC_QUESTIONS, as_asked, as_said,
                                            capitalize_sentences, is_narrative_opening, rephrase)
from personaforge.dataset.retrieval import Retriever
from personaforge.dataset.teacher import TeacherClient
from personaforge.dataset.text import norm_words, sentences, stable_index, word_count
from personaforge.personas import PersonaCard

TEMPLATE = "template"


class TemplateWriter:
    """Deterministic, offline: choices depend only on ids, text and the seed."""

    def __init__(self, retriever: Retriever, seed: int) -> None:
        self.retriever = retriever
        self.seed = seed

    def _pick(self, options: list[str], key: str) -> str:
        return options[stable_index(f"{self.seed}:{key}", len(options))]

    def continuation(self, answer: str, key: str) -> str:
        """The follow-up an interviewer gives when the person is in the middle of telling something."""
        return self._pick(NARRATIVE_CONTINUATIONS if is_narrative_opening(answer) else CONTINUATIONS, key)

    def topic_question(self, card: PersonaCard, options: list[tuple[str, str]], passage: str,
                       key: str) -> tuple[str, str, float, str] | None:
        """(question, answer, fit, generator) for a chunk nobody asked for: of the card topics the chunk speaks
        of (``options``: topic and the passage that starts on it), the topic question that fits best, if any fits."""
        best: tuple[float, int, str, str] | None = None
        for index, (topic, text) in enumerate(options):
            question = self._pick(TOPIC_QUESTIONS, f"{key}:{topic}").format(topic=as_asked(topic))
            fit = self.retriever.fit(question, text)
            if fit >= self.retriever.threshold and (best is None or fit > best[0]) \
                    and self.retriever.best_topic(card.topics, text) == topic:
                best = (fit, index, question, text)
        if best is None:
            return None
        return best[2], best[3], best[0], TEMPLATE

    def topic_questions(self, card: PersonaCard) -> list[str]:
        """Every topic question this writer may put to the persona, and the probes that tell topics apart."""
        return [template.format(topic=as_asked(topic)) for topic in card.topics for template in TOPIC_QUESTIONS]

    def topic_template(self, topic: str, number: int, key: str) -> str:
        start = stable_index(f"{self.seed}:{key}", len(TOPIC_QUESTIONS))
        return TOPIC_QUESTIONS[(start + number) % len(TOPIC_QUESTIONS)].format(topic=as_asked(topic))

    def ask_for_passage(self, card: PersonaCard, topic: str, question: str, passage: str, fit: float,
                        key: str) -> tuple[str, float, str]:
        """The question for a retrieved passage: offline, the one it was retrieved with."""
        return question, fit, TEMPLATE

    def rephrase_question(self, question: str, answer: str, card: PersonaCard, key: str) -> tuple[str, str] | None:
        rephrased = rephrase(question, stable_index(f"{self.seed}:rephrase:{key}", 2))
        return (rephrased, TEMPLATE) if rephrased else None

    def deflection(self, card: PersonaCard, topic: str, other: PersonaCard, key: str) -> tuple[str, str, str]:
        question = self._pick(NEGATIVE_QUESTIONS, key).format(topic=topic)
        own = as_said(card.topics[stable_index(f"{self.seed}:own:{key}", len(card.topics))]) if card.topics else "my own work"
        answer = (card.deflection or DEFAULT_DEFLECTION).format(topic=topic, other=other.name, own_topic=own)
        return question, capitalize_sentences(answer), TEMPLATE

    def report(self) -> dict | None:
        return None


# ----------------------------------------------------------------------------------------------- teacher
REFUSAL = re.compile(r"\b(?:as an ai|language model|i'm sorry|i am sorry|i cannot|i can't help|i can not|"
                     r"i'm unable|i am unable|sorry, but|i won't)\b", re.I)
WRAPPER = re.compile(r"^(?:question|q|rephrased question|rephrased|answer)\s*:\s*", re.I)
# A word and a colon: a speaker label ("Mira: ...", "Human: ...") or someone named as speaking ("The interviewer
# asks: \"...\"").
# Measured on SmolLM2-135M (tests/dataset/test_teacher_llama.py): it often wraps its question that way, and a
# question put to a person has no use for a colon. Digits before it are a time, which the timestamp check covers.
ATTRIBUTION = re.compile(r"[^\W\d_]\s?:")
IMPERATIVE = re.compile(r"^(?:tell|talk|describe|walk|explain|share)\b", re.I)
COPY_WORDS = 8  # a question that repeats this many words of the answer in a row copies it
PARAPHRASE_MIN = 0.6  # a rephrased question must mean what the real one meant (cosine of the two questions)


def _shared_run(a: list[str], b: list[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def clean_response(text: str) -> str:
    text = text.strip()
    text = WRAPPER.sub("", text).strip().strip('"“”«»').strip()
    return text


def text_problem(question: str, original: str = "") -> str | None:
    """What is wrong with a teacher's response as a question, by its text alone (None: nothing found).

    ``original`` is the question it rephrases, if any: a rephrasing may keep as many sentences as it has
    (a lead-in, then the question); anything else is one sentence, the question itself. Small models put a
    remark before the question ("What a beautiful story. ...") or after it.
    """
    if not question:
        return "empty"
    if ("\n" in question or word_count(question) < 3 or word_count(question) > 40
            or len(sentences(question)) > max(1, len(sentences(original)))):
        return "not one question"
    if not (question.endswith("?") or (question.endswith(".") and IMPERATIVE.match(question))):
        return "not a question"
    if REFUSAL.search(question):
        return "refusal"
    if INLINE_TIMESTAMP.search(question) or LABEL_WITH_TIME.search(question) or ATTRIBUTION.search(question):
        return "label or timestamp"
    return None


class TeacherWriter(TemplateWriter):
    """Asks a teacher LLM for questions; each response is checked, and one that fails falls back to the
    offline question for that record (or no record, where offline has none). Both are counted."""

    def __init__(self, retriever: Retriever, seed: int, client: TeacherClient) -> None:
        super().__init__(retriever, seed)
        self.client = client
        self.asked = 0
        self.accepted = 0
        self.rejected: Counter[str] = Counter()

    @property
    def fallbacks(self) -> int:
        return sum(self.rejected.values())

    def problem(self, question: str, answer: str, original: str = "") -> tuple[str | None, float]:
        """Why a teacher question cannot be used for ``answer`` (None when it can), and its fit."""
        reason = text_problem(question, original)
        if reason is not None:
            return reason, 0.0
        if original and norm_words(question) == norm_words(original):
            return "copied the prompt", 0.0
        if _shared_run(norm_words(question), norm_words(answer)) >= COPY_WORDS:
            return "copied the prompt", 0.0
        fit = self.retriever.fit(question, answer)
        if original:
            # A rephrasing answers what the real question answered: it has to mean the same.
            if self.retriever.fit(question, original) < PARAPHRASE_MIN:
                return "does not fit the answer", fit
        elif fit < self.retriever.threshold:
            return "does not fit the answer", fit
        return None, fit

    def _ask(self, system: str, user: str, answer: str, original: str = "") -> tuple[str, float] | None:
        self.asked += 1
        question = clean_response(self.client.complete(system, user, max_tokens=80))
        reason, fit = self.problem(question, answer, original)
        if reason is not None:
            self.rejected[reason] += 1
            return None
        self.accepted += 1
        return question, fit

    def topic_question(self, card: PersonaCard, options: list[tuple[str, str]], passage: str,
                       key: str) -> tuple[str, str, float, str] | None:
        found = self._ask(
            "You write the interviewer's questions for documentary transcripts.",
            f"{card.name} said this in an interview:\n\n{passage}\n\nWrite the one question (at most 25 words) an"
            " interviewer would ask that this passage answers. Reply with the question only.", passage)
        if found:
            return found[0], passage, found[1], self.client.tag
        return super().topic_question(card, options, passage, key)

    def ask_for_passage(self, card: PersonaCard, topic: str, question: str, passage: str, fit: float,
                        key: str) -> tuple[str, float, str]:
        found = self._ask(
            "You write interview questions.",
            f"Write one interview question for {card.name} about {as_asked(topic).replace('your ', 'their ')} that this"
            " passage of theirs answers."
            f" Reply with the question only.\n\nPassage:\n{passage}", passage)
        if found:
            return found[0], found[1], self.client.tag
        return question, fit, TEMPLATE

    def rephrase_question(self, question: str, answer: str, card: PersonaCard, key: str) -> tuple[str, str] | None:
        found = self._ask("You rephrase interview questions.",
                          f"Rephrase this question without changing its meaning. Reply with the question only.\n\n{question}",
                          answer, original=question)
        if found:
            return found[0], self.client.tag
        return super().rephrase_question(question, answer, card, key)

    def report(self) -> dict:
        # Content only (no request or cache counts): a rebuild from the cache gives the same card bytes.
        return {"model": self.client.config.model, "asked": self.asked, "accepted": self.accepted,
                "fell_back": dict(sorted(self.rejected.items()))}
