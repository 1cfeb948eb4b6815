"""Batched, left-padded generation with a KV cache and stop strings (HF backend).

Prompts are sorted by length and batched (see length_buckets), so each batch pads little; answers come back
in the input order. Greedy by default; sampling is seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    batch_size: int = 8
    seed: int = 0
    repetition_penalty: float = 1.0


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    cut = len(text)
    for stop in stop_strings:
        index = text.find(stop)
        if index >= 0:
            cut = min(cut, index)
    return text[:cut].strip()


def _stop_token_ids(tokenizer, stop_strings: Sequence[str]) -> list[int]:
    """EOS plus any stop string that is a single special token (e.g. <|im_end|>, <|eot_id|>)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for stop in stop_strings:
        token = tokenizer.convert_tokens_to_ids(stop) if stop in tokenizer.all_special_tokens else None
        if isinstance(token, int) and token != tokenizer.unk_token_id:
            ids.add(token)
    return sorted(ids)


# A batch is as wide as its longest prompt, and the prefill computes every pad position: with prompts
# sorted by length, a batch is closed early when the next prompt is this much longer than its first one.
MAX_WIDTH_RATIO = 1.5


def length_buckets(lengths: Sequence[int], batch_size: int, max_width_ratio: float = MAX_WIDTH_RATIO) -> list[list[int]]:
    """Indices into ``lengths``, shortest first, in batches of at most ``batch_size`` whose longest prompt is at
    most ``max_width_ratio`` times their shortest (a prompt longer than that starts the next batch)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for index in order:
        current = batches[-1] if batches else None
        if (current is None or len(current) >= batch_size
                or lengths[index] > max_width_ratio * max(1, lengths[current[0]])):
            batches.append([index])
        else:
            current.append(index)
    return batches


def generate(model, tokenizer, prompts: Sequence[str], settings: GenerationSettings, *,
             stop_strings: Sequence[str] = (), add_special_tokens: bool = True,
             progress: Callable[[int], None] = lambda n: None) -> list[str]:
    """One answer per prompt, in order; the prompt is stripped and the text cut at the first stop string."""
    if not prompts:
        return []
    device = next(model.parameters()).device
    encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = _stop_token_ids(tokenizer, stop_strings)
    text_stops = [s for s in stop_strings if s not in tokenizer.all_special_tokens]
    answers: list[str] = [""] * len(prompts)
    sample = settings.temperature > 0
    generator_seed = settings.seed
    model.eval()
    start = 0
    for batch in length_buckets([len(ids) for ids in encoded], settings.batch_size):
        width = max(len(encoded[i]) for i in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, index in enumerate(batch):
            ids = encoded[index]
            input_ids[row, width - len(ids):] = torch.tensor(ids)  # left padding: every prompt ends at the edge
            attention[row, width - len(ids):] = 1
        kwargs = dict(max_new_tokens=settings.max_new_tokens, do_sample=sample, pad_token_id=pad,
                      eos_token_id=eos_ids or None, use_cache=True)
        if sample:
            torch.manual_seed(generator_seed + start)  # seeded per batch: reproducible for a fixed batch size
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if settings.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = settings.repetition_penalty
        if text_stops:
            kwargs.update(stop_strings=list(text_stops), tokenizer=tokenizer)
        with torch.no_grad():
            output = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs)
        for row, index in enumerate(batch):
            text = tokenizer.decode(output[row, width:], skip_special_tokens=True)
            answers[index] = cut_at_stop(text, text_stops)
        progress(len(batch))
        start += len(batch)
    return answers
