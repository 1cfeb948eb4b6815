"""Records → token ids with completion-only labels; truncation never silently drops the answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from personaforge.prompting import Conversation, PromptFormat, conversation_from_record

IGNORE = -100


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class TokenizeStats:
    samples: int = 0
    kept: int = 0
    context_cut: int = 0  # oldest context exchanges removed to fit
    prompt_cut: int = 0  # prompt tokens cut from the left as a last resort
    dropped: int = 0  # the answer alone does not fit max_length
    dropped_ids: list[str] = field(default_factory=list)
    tokens: int = 0
    label_tokens: int = 0

    def to_json(self) -> dict:
        return {"samples": self.samples, "kept": self.kept, "context_cut": self.context_cut,
                "prompt_cut": self.prompt_cut, "dropped": self.dropped, "dropped_ids": self.dropped_ids[:50],
                "tokens": self.tokens, "label_tokens": self.label_tokens}


def _encode(tokenizer, text: str, special: bool) -> list[int]:
    return tokenizer(text, add_special_tokens=special)["input_ids"]


def _completion_ids(fmt: PromptFormat, tokenizer, completion: str) -> list[int]:
    ids = _encode(tokenizer, completion, False)
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)  # EOS is appended and learned: the model must know when to stop
    return ids


def _prompt_ids(fmt: PromptFormat, tokenizer, prompt: str) -> list[int]:
    # Plain prompts get the tokenizer's own special tokens (BOS); chat templates write them as text.
    return _encode(tokenizer, prompt, fmt.style == "plain")


def tokenize_record(record: dict, fmt: PromptFormat, tokenizer, max_length: int,
                    stats: TokenizeStats) -> Example | None:
    stats.samples += 1
    conversation = conversation_from_record(record)
    if conversation is not None:
        prompt, completion = fmt.render(conversation, tokenizer)
    else:
        prompt, completion = record["prompt"], record["completion"]
    completion_ids = _completion_ids(fmt, tokenizer, completion)
    prompt_ids = _prompt_ids(fmt, tokenizer, prompt)
    if len(completion_ids) >= max_length:
        stats.dropped += 1
        stats.dropped_ids.append(str(record.get("id", stats.samples)))
        return None
    cut_context = False
    while len(prompt_ids) + len(completion_ids) > max_length and conversation is not None and conversation.history:
        conversation = Conversation(conversation.system, conversation.name, conversation.history[1:],
                                    conversation.question, conversation.answer)
        prompt_ids = _prompt_ids(fmt, tokenizer, fmt.render(conversation, tokenizer)[0])
        cut_context = True
    if len(prompt_ids) + len(completion_ids) > max_length:
        prompt_ids = prompt_ids[len(prompt_ids) + len(completion_ids) - max_length:]
        stats.prompt_cut += 1
    elif cut_context:
        stats.context_cut += 1
    stats.kept += 1
    stats.tokens += len(prompt_ids) + len(completion_ids)
    stats.label_tokens += len(completion_ids)
    return Example(prompt_ids + completion_ids, [IGNORE] * len(prompt_ids) + completion_ids)


def tokenize_records(records: list[dict], fmt: PromptFormat, tokenizer, max_length: int) -> tuple[list[Example], TokenizeStats]:
    stats = TokenizeStats()
    examples = [e for r in records if (e := tokenize_record(r, fmt, tokenizer, max_length, stats)) is not None]
    return examples, stats
