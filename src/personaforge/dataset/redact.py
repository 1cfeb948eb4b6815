"""Privacy: replace non-persona speakers' self-introductions with their role."""

from __future__ import annotations

import re

from personaforge.personas import PersonaCard

_NAME = r"[A-ZÀ-Þ][\w'’\-]+(?:\s+(?:van|de|der|von|da|di|le|la|[A-ZÀ-Þ][\w'’\-]+))*"
_PLACE = r"(?:the\s+)?[A-ZÀ-Þ][\w'’\-]+(?:\s+(?:[A-ZÀ-Þ][\w'’\-]+|of|the|and))*"
INTRODUCTIONS = [
    # "my name is Clara Jensen, I'm a teacher from Aarhus" / "my name's Clara" / "I'm called Clara"
    re.compile(rf"\b(?:my name is|my name's|i'm called|i am called|this is)\s+{_NAME}"
               rf"(?:\s*,?\s*(?:and\s+)?(?:i'm|i am)\s+(?:a|an|the)\s+[\w\s\-]{{1,40}}?\s+(?:from|at|with|in)\s+{_PLACE})?"
               rf"(?:\s*,?\s*(?:from|at|with)\s+{_PLACE})?", re.IGNORECASE),
    # "I am Peter Holm from the allotment society" / "I'm Peter, from Odense"
    re.compile(rf"\b(?:i am|i'm)\s+(?-i:{_NAME})\s*,?\s*(?:from|at|with)\s+{_PLACE}", re.IGNORECASE),
]


def role_phrase(speaker: str, card: PersonaCard | None) -> str:
    if card is not None and card.role == "interviewer":
        return "the interviewer"
    label = speaker.casefold()
    if any(word in label for word in ("audience", "speaker", "question", "attendee", "caller")):
        return "an audience member"
    return "another speaker"


def redact_introductions(text: str, role: str) -> str:
    for pattern in INTRODUCTIONS:
        text = pattern.sub(f"I am {role}", text)
    return text
