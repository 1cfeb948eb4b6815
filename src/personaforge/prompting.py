"""THE prompt format. Dataset building, training, evaluation, chat and export all call this module.

Plain style (the original pipeline's, kept byte-compatible):

    prompt     = "{system}\n\nHuman: {q1}\n\n{Name}: {a1}\n\nHuman: {q}\n\n{Name}:"
    completion = " {answer}"

Chat style: ``messages`` = system / user / assistant turns; the model's chat template renders them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

HUMAN = "Human"


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str


def plain_prompt(system: str, name: str, question: str, history: Sequence[Exchange] = ()) -> str:
    parts = [system.strip()] if system.strip() else []
    for exchange in history:
        parts.append(f"{HUMAN}: {exchange.question.strip()}")
        parts.append(f"{name}: {exchange.answer.strip()}")
    parts.append(f"{HUMAN}: {question.strip()}")
    parts.append(f"{name}:")
    return "\n\n".join(parts)


def plain_completion(answer: str) -> str:
    return " " + answer.strip()


def chat_messages(system: str, question: str, history: Sequence[Exchange] = (),
                  answer: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system.strip()}] if system.strip() else []
    for exchange in history:
        messages.append({"role": "user", "content": exchange.question.strip()})
        messages.append({"role": "assistant", "content": exchange.answer.strip()})
    messages.append({"role": "user", "content": question.strip()})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer.strip()})
    return messages


def plain_stop_strings(names: Sequence[str]) -> list[str]:
    """Where a generated plain-style answer ends: the next Human turn or any persona's turn."""
    return [f"\n\n{HUMAN}:"] + [f"\n\n{name}:" for name in names]

