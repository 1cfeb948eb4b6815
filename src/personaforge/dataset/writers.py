"""Who writes the generated text: deterministic templates (offline default) or a teacher LLM.

Templates never invent facts: every generated answer is made of the persona's own sentences.
"""

from __future__ import annotations

import re

from personaforge.dataset.salience import Salience, query_terms
from personaforge.dataset.teacher import TeacherClient
from personaforge.dataset.text import sentences, stable_index, word_count
from personaforge.personas import PersonaCard

TEMPLATE = "template"

QUESTION_WITH_TOPIC = [
    "When it comes to {topic}, what can you tell me about {k1}?",
    "How does {k1} fit into {topic} for you?",
    "What do {k1} and {k2} have to do with {topic}?",
    "Thinking about {topic}: where does {k1} come in?",
]
QUESTION_WITH_KEYWORDS = [
    "What can you tell me about {k1}?",
    "Tell me about {k1} and {k2}.",
    "Why does {k1} matter to you?",
    "What comes to mind when you think about {k1}?",
    "Can you talk about {k1} and {k2}?",
]
REPHRASINGS = [
    (re.compile(r"^what do you think (?:about|of) (.+?)\??$", re.I), "How do you see {0}?"),
    (re.compile(r"^tell (?:me|us) (?:a bit |a little )?about (.+?)[.?!]?$", re.I), "What can you say about {0}?"),
    (re.compile(r"^what can you tell (?:me|us) about (.+?)\??$", re.I), "Tell me about {0}."),
    (re.compile(r"^how do you (.+?)\??$", re.I), "In what way do you {0}?"),
    (re.compile(r"^do you (.+?)\??$", re.I), "Would you say you {0}?"),
    (re.compile(r"^can you (.+?)\??$", re.I), "Could you {0}?"),
    (re.compile(r"^could you (.+?)\??$", re.I), "Would you {0}?"),
    (re.compile(r"^what (.+?)\??$", re.I), "Could you tell me what {0}?"),
    (re.compile(r"^how (.+?)\??$", re.I), "Can you explain how {0}?"),
    (re.compile(r"^why (.+?)\??$", re.I), "What is behind this: why {0}?"),
]
REPHRASE_FALLBACK = ["In your own words: {q}", "Let me ask it another way. {q}", "I'd like to hear more. {q}"]
FILLER = re.compile(r"^(?:so|and|okay|ok|well|now|right|alright|but)[,\s]+", re.I)
HYPOTHETICAL_QUESTIONS = [
    "If a young person asked you about {topic}, what would you tell them?",
    "What is the biggest misunderstanding people have about {topic}?",
    "How has your view of {topic} changed over the years?",
    "What has {topic} taught you?",
    "What is one story about {topic} that stays with you?",
    "If you could change one thing about {topic}, what would it be?",
]
NEGATIVE_QUESTIONS = [
    "What do you think about {topic}?",
    "Can you explain {topic} to me?",
    "What is your advice on {topic}?",
]
DEFAULT_DEFLECTION = (
    "I'm not the right person to ask about {topic}; {other} knows far more about that than I do."
    " What I can talk about is {own_topic}."
)


class TemplateWriter:
    """Deterministic, offline generators: choices depend only on ids, text and the seed."""

    def __init__(self, salience: Salience, seed: int) -> None:
        self.salience = salience
        self.seed = seed

    def _pick(self, options: list[str], key: str) -> str:
        return options[stable_index(f"{self.seed}:{key}", len(options))]

    def question_for(self, answer: str, card: PersonaCard, key: str) -> tuple[str, str]:
        keywords = self.salience.keywords(answer, 2)
        if not keywords:
            keywords = ["that"]
        k1, k2 = keywords[0], keywords[-1] if len(keywords) > 1 else keywords[0]
        scored = [(self.salience.relevance(query_terms(t), answer), -i, t) for i, t in enumerate(card.topics)]
        best = max(scored, default=(0.0, 0, ""))
        if best[0] > 0 and stable_index(f"{self.seed}:topic:{key}", 2) == 0:
            template = self._pick(QUESTION_WITH_TOPIC, key)
            return template.format(topic=best[2], k1=k1, k2=k2), TEMPLATE
        template = self._pick(QUESTION_WITH_KEYWORDS if k1 != k2 else QUESTION_WITH_KEYWORDS[:1], key)
        return template.format(k1=k1, k2=k2), TEMPLATE

    def rephrase_question(self, question: str, card: PersonaCard, key: str) -> tuple[str, str]:
        parts = sentences(question)
        last = next((s for s in reversed(parts) if "?" in s), parts[-1] if parts else question)
        core = FILLER.sub("", last).strip()
        for pattern, template in REPHRASINGS:
            match = pattern.match(core)
            if match:
                rephrased = template.format(match.group(1).strip())
                if rephrased.casefold() != question.casefold():
                    return rephrased, TEMPLATE
        return self._pick(REPHRASE_FALLBACK, key).format(q=core[:1].upper() + core[1:]), TEMPLATE

    def transform_answer(self, answer: str, card: PersonaCard, key: str) -> tuple[str, str]:
        parts = sentences(answer)
        if len(parts) < 3:
            return answer, TEMPLATE
        if stable_index(f"{self.seed}:transform:{key}", 2) == 0:
            keep = max(2, round(len(parts) * 0.6))
            return self.salience.top_sentences(answer, set(), keep), TEMPLATE
        return " ".join(parts[1:] + parts[:1]), TEMPLATE  # same content, another order

    def hypothetical(self, card: PersonaCard, topic: str, material: str, key: str) -> tuple[str, str, str]:
        question = self._pick(HYPOTHETICAL_QUESTIONS, key).format(topic=topic)
        return question, self.salience.top_sentences(material, query_terms(topic), 3), TEMPLATE

    def answer_from(self, card: PersonaCard, question: str, material: str, key: str) -> tuple[str, str]:
        return self.salience.top_sentences(material, query_terms(question), 3), TEMPLATE

    def deflection(self, card: PersonaCard, topic: str, other: PersonaCard, key: str) -> tuple[str, str, str]:
        question = self._pick(NEGATIVE_QUESTIONS, key).format(topic=topic)
        own = card.topics[stable_index(f"{self.seed}:own:{key}", len(card.topics))] if card.topics else "my own work"
        answer = (card.deflection or DEFAULT_DEFLECTION).format(topic=topic, other=other.name, own_topic=own)
        return question, " ".join(answer.split()), TEMPLATE


class TeacherWriter(TemplateWriter):
    """Asks a teacher LLM for questions, paraphrases and grounded answers; templates stay the fallback."""

    def __init__(self, salience: Salience, seed: int, client: TeacherClient) -> None:
        super().__init__(salience, seed)
        self.client = client
        self.fallbacks = 0

    def _ask(self, system: str, user: str, min_words: int = 2) -> str | None:
        text = self.client.complete(system, user).strip().strip('"“”').strip()
        if word_count(text) < min_words:
            self.fallbacks += 1
            return None
        return text

    def question_for(self, answer: str, card: PersonaCard, key: str) -> tuple[str, str]:
        text = self._ask(
            "You write the interviewer's questions for documentary transcripts.",
            f"{card.name} said this in an interview:\n\n{answer}\n\nWrite the one question (at most 25 words) the"
            " interviewer most likely asked just before. Reply with the question only.",
        )
        return (text, self.client.tag) if text else super().question_for(answer, card, key)

    def rephrase_question(self, question: str, card: PersonaCard, key: str) -> tuple[str, str]:
        text = self._ask("You rephrase interview questions.",
                         f"Rephrase this question without changing its meaning. Reply with the question only.\n\n{question}")
        return (text, self.client.tag) if text else super().rephrase_question(question, card, key)

    def transform_answer(self, answer: str, card: PersonaCard, key: str) -> tuple[str, str]:
        text = self._ask(
            f"You rewrite what {card.name} said. Their style: {card.speaking_style}",
            f"Say the same thing again in {card.name}'s own voice, more briefly, keeping every fact and adding none."
            f" Reply with the answer only.\n\n{answer}", min_words=5)
        return (text, self.client.tag) if text else super().transform_answer(answer, card, key)

    def hypothetical(self, card: PersonaCard, topic: str, material: str, key: str) -> tuple[str, str, str]:
        question = self._ask("You write interview questions.",
                             f"Write one new interview question for {card.name} about {topic} that this material"
                             f" answers. Reply with the question only.\n\nMaterial:\n{material}")
        if not question:
            return super().hypothetical(card, topic, material, key)
        answer, generator = self.answer_from(card, question, material, key)
        return question, answer, generator

    def answer_from(self, card: PersonaCard, question: str, material: str, key: str) -> tuple[str, str]:
        text = self._ask(
            card.prompt_text(),
            f"Using only the facts in this material, answer in your own voice in 40 to 120 words.\n\n"
            f"Material:\n{material}\n\nQuestion: {question}", min_words=5)
        return (text, self.client.tag) if text else super().answer_from(card, question, material, key)
