"""THE prompt format. Dataset building, training, evaluation, chat and export all call this module.

Plain style (the original pipeline's, kept byte-compatible):

    prompt     = "{system}\n\nHuman: {q1}\n\n{Name}: {a1}\n\nHuman: {q}\n\n{Name}:"
    completion = " {answer}"

Chat style: ``messages`` = system / user / assistant turns; the model's chat template renders them.
"""

from __future__ import annotations

import re
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



# ------------------------------------------------------------------------------------ model-facing format
# A model without a chat template gets this one (ChatML); it is saved with the run so every later stage
# renders the same text.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Conversation:
    """One record in structured form: what both styles render from."""

    system: str
    name: str
    history: tuple[Exchange, ...]
    question: str
    answer: str | None = None

    def without_oldest(self) -> "Conversation":
        return Conversation(self.system, self.name, self.history[1:], self.question, self.answer)


def conversation_from_record(record: dict) -> Conversation | None:
    """Structured form of a record that has ``messages`` and a ``persona``; None for prompt/completion-only files."""
    messages = record.get("messages")
    name = record.get("persona")
    if not isinstance(messages, list) or not name or len(messages) < 2:
        return None
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    turns = messages[1:] if system else messages
    answer = turns[-1]["content"] if turns[-1]["role"] == "assistant" else None
    if answer is not None:
        turns = turns[:-1]
    if not turns or turns[-1]["role"] != "user":
        return None
    pairs = turns[:-1]
    history = tuple(Exchange(pairs[i]["content"], pairs[i + 1]["content"]) for i in range(0, len(pairs) - 1, 2))
    return Conversation(system, str(name), history, turns[-1]["content"], answer)


@dataclass(frozen=True)
class PromptFormat:
    """The exact prompt style a run trains with; saved into the run and reused by eval, chat and export."""

    style: str  # "plain" | "chat"
    chat_template: str | None = None  # chat style only: the Jinja template used
    eos_token: str | None = None

    def to_json(self) -> dict:
        return {"style": self.style, "chat_template": self.chat_template, "eos_token": self.eos_token}

    @classmethod
    def from_json(cls, data: dict) -> "PromptFormat":
        return cls(style=data["style"], chat_template=data.get("chat_template"), eos_token=data.get("eos_token"))

    def render(self, conversation: Conversation, tokenizer=None) -> tuple[str, str | None]:
        """(prompt text, completion text or None). The completion ends where the model must stop."""
        if self.style == "plain":
            prompt = plain_prompt(conversation.system, conversation.name, conversation.question, conversation.history)
            return prompt, None if conversation.answer is None else plain_completion(conversation.answer)
        messages = chat_messages(conversation.system, conversation.question, conversation.history)
        prompt = tokenizer.apply_chat_template(messages, chat_template=self.chat_template, tokenize=False,
                                               add_generation_prompt=True)
        if conversation.answer is None:
            return prompt, None
        full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": conversation.answer.strip()}],
                                             chat_template=self.chat_template, tokenize=False)
        if full.startswith(prompt):
            # Keep the template's end-of-turn marker (it is what generation stops on), drop trailing newlines.
            return prompt, full[len(prompt):].rstrip("\n")
        return prompt, conversation.answer.strip()

    def stop_strings(self, names: Sequence[str]) -> list[str]:
        return plain_stop_strings(names) if self.style == "plain" else []


def choose_prompt_format(requested: str, tokenizer, has_messages: bool, has_plain: bool) -> PromptFormat:
    """auto: the model's chat template when it has one (and records have messages), else the plain style."""
    from personaforge.errors import PersonaForgeError

    template = getattr(tokenizer, "chat_template", None)
    style = requested
    if requested == "auto":
        style = "chat" if (template and has_messages) or not has_plain else "plain"
    if style == "chat" and not has_messages:
        raise PersonaForgeError("data.prompt_style: chat needs records with 'messages'; this dataset has only"
                                " prompt/completion — use prompt_style: plain")
    if style == "plain" and not has_plain and not has_messages:
        raise PersonaForgeError("data.prompt_style: plain needs 'prompt'/'completion' (or 'messages' + 'persona')")
    if style == "chat":
        return PromptFormat("chat", template or DEFAULT_CHAT_TEMPLATE, tokenizer.eos_token)
    return PromptFormat("plain", None, tokenizer.eos_token)


# -------------------------------------------------------------- reading the plain format back (the original's records)
@dataclass(frozen=True)
class PlainRecord:
    """What a prompt/completion record in the plain format says: its speaker, and its turns when they parse."""

    persona: str
    conversation: Conversation | None  # None when the turns before the question do not alternate
    exact: bool  # rendering the conversation gives back the record's prompt and completion byte for byte


def _turn_name(prompt: str) -> str | None:
    """The speaker the prompt hands over to: '...\n\nHuman: q\n\nTilda:' → 'Tilda'."""
    head, _, last = prompt.rstrip(" \t").rpartition("\n\n")
    if not last.endswith(":") or not head.strip():
        return None
    name = last[:-1].strip()
    if not name or len(name) > 80 or name == HUMAN or not re.search(r"\w", name):
        return None
    return name


def parse_plain_record(prompt: str, completion: str | None) -> PlainRecord | None:
    """The original pipeline's records carry no persona field: the persona is the speaker whose turn the prompt
    ends with (``"<system>\n\nHuman: <question>\n\n<Name>:"``). None when the prompt does not end that way."""
    name = _turn_name(prompt)
    if name is None:
        return None
    blocks = prompt.rstrip(" \t").rpartition("\n\n")[0].split("\n\n")
    system: list[str] = []
    turns: list[list[str]] = []
    for block in blocks:
        speaker = next((s for s in (HUMAN, name) if block.startswith(f"{s}:")), None)
        if speaker is not None:
            turns.append([speaker, block[len(speaker) + 1:]])
        elif turns:
            turns[-1][1] += "\n\n" + block  # a turn of several paragraphs
        else:
            system.append(block)
    if not turns or turns[-1][0] != HUMAN:
        return PlainRecord(name, None, False)
    earlier = turns[:-1]
    if len(earlier) % 2 or any(earlier[i][0] != HUMAN or earlier[i + 1][0] != name for i in range(0, len(earlier), 2)):
        return PlainRecord(name, None, False)
    history = tuple(Exchange(earlier[i][1].strip(), earlier[i + 1][1].strip()) for i in range(0, len(earlier), 2))
    answer = completion.strip() if completion is not None else None
    conversation = Conversation("\n\n".join(system).strip(), name, history, turns[-1][1].strip(), answer)
    exact = plain_prompt(conversation.system, name, conversation.question, history) == prompt and (
        completion is None or plain_completion(completion) == completion)
    return PlainRecord(name, conversation, exact)


def record_conversation(record: dict) -> Conversation | None:
    """A record's structured form: from its messages, else from its plain prompt (the original's records)."""
    conversation = conversation_from_record(record)
    if conversation is not None or not isinstance(record.get("prompt"), str):
        return conversation
    parsed = parse_plain_record(record["prompt"], record.get("completion"))
    if parsed is None or parsed.conversation is None:
        return None
    if record.get("persona") and record["persona"] != parsed.persona:
        return None  # the record says another persona than its prompt's last turn: trust neither
    return parsed.conversation
