"""Batched generation with a KV cache and stop strings (HF backend).

Each prompt is prefilled on its own, from a cached prefill of the start it shares with other prompts, and a batch
decodes together, left-padded (see generate). Answers come back in the input order. Greedy by default; sampling
is seeded.
"""

from __future__ import annotations

import functools
import os
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
    repetition_penalty_scope: str = "answer"  # "answer" or "prompt_and_answer" (EvalSection documents why)
    end_rule: str = "likelier_than_not"  # greedy only: "likelier_than_not" or "argmax" (see decoding_kwargs)

    @classmethod
    def from_eval(cls, section, batch_size: int) -> GenerationSettings:
        """A config's eval section (config.EvalSection) as generation settings: eval, chat and serve share them.
        Keys a section lacks keep these settings' defaults."""
        optional = {key: getattr(section, key) for key in ("repetition_penalty", "repetition_penalty_scope", "end_rule")
                    if hasattr(section, key)}
        return cls(section.max_new_tokens, section.temperature, section.top_p, batch_size, section.seed, **optional)


def decoding_kwargs(settings: GenerationSettings, prompt_width: int, end_ids: Sequence[int]) -> dict:
    """generate() kwargs for the repetition penalty and the greedy end rule. ``prompt_width`` is the (padded)
    prompt length of the batch; ``end_ids`` are the tokens that end an answer.

    HF's own ``repetition_penalty`` also counts every prompt token: the system prompt, the question and the
    earlier turns. An answer is then pushed away from the very words the question and the persona's context
    use, so with scope "answer" only the tokens generated so far are penalised. The end rule is explained in
    _end_rule_class.
    """
    from transformers import LogitsProcessorList, RepetitionPenaltyLogitsProcessor

    kwargs: dict = {}
    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        if settings.repetition_penalty_scope == "prompt_and_answer":
            kwargs["repetition_penalty"] = settings.repetition_penalty
        else:
            processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty,
                                                               prompt_ignore_length=prompt_width))
    if settings.temperature == 0 and settings.end_rule == "likelier_than_not" and end_ids:
        processors.append(_end_rule_class()(end_ids))  # after the penalty: it judges the scores greedy will use
    if processors:
        kwargs["logits_processor"] = processors
    return kwargs


@functools.cache
def _end_rule_class():
    from transformers import LogitsProcessor

    class EndWhenLikelierThanNot(LogitsProcessor):
        """Greedy end rule "likelier_than_not": an answer may end only where the end tokens together hold at
        least half of the next-token probability, i.e. where ending is likelier than going on.

        Plain greedy ("argmax") ends as soon as the end token beats the single likeliest next word. A model
        trained on a person's answers spreads "go on" over the many first words a next sentence can start with
        but puts "stop" on one token, so plain greedy stops at the first sentence end where that one token
        outweighs the likeliest word: teacher-forced on the eval references, the fine-tuned SmolLM2 gives the end
        token 0.20 at their inner sentence ends (about the data's own chance that a passage ends at a given
        sentence) and it is the argmax at 43% of them, so its greedy answers were 0.6–0.75 of the real length
        (README, Quality). Sampling draws the end with its own probability and needs no rule."""

        def __init__(self, end_ids: Sequence[int]) -> None:
            self.end_ids = sorted(set(int(i) for i in end_ids))

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            exact = scores if scores.dtype in (torch.float32, torch.float64) else scores.float()
            ending = exact.softmax(dim=-1)[:, self.end_ids].sum(dim=-1)
            blocked = torch.zeros_like(scores, dtype=torch.bool)
            blocked[:, self.end_ids] = (ending < 0.5).unsqueeze(1)
            return scores.masked_fill(blocked, float("-inf"))

    return EndWhenLikelierThanNot


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    cut = len(text)
    for stop in stop_strings:
        index = text.find(stop)
        if index >= 0:
            cut = min(cut, index)
    return text[:cut].strip()


def split_stops(tokenizer, stop_strings: Sequence[str]) -> tuple[set[int], list[str]]:
    """Stop strings split by how generation ends at them: the ids of those that are a single special token
    (e.g. <|im_end|>, <|eot_id|>), which end a row like EOS, and the rest, matched in the decoded text."""
    special = set(tokenizer.all_special_tokens)
    ids: set[int] = set()
    for stop in stop_strings:
        token = tokenizer.convert_tokens_to_ids(stop) if stop in special else None
        if isinstance(token, int) and token != tokenizer.unk_token_id:
            ids.add(token)
    return ids, [s for s in stop_strings if s and s not in special]


def _stop_token_ids(tokenizer, stop_strings: Sequence[str]) -> list[int]:
    """EOS plus any stop string that is a single special token."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    return sorted(ids | split_stops(tokenizer, stop_strings)[0])


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


def _can_prefill_separately(model, settings: GenerationSettings, encoded: Sequence[Sequence[int]]) -> bool:
    """Whether prompts can be prefilled one by one into a plain key/value cache and merged for decoding.

    Models with recurrent or linear-attention layers keep other state, and a sliding window narrower than the
    longest prompt plus its answer would crop rows of different lengths differently; a forward without
    ``logits_to_keep`` would compute the lm_head on every prefilled position. Those take generate()'s own padded
    prefill."""
    import inspect

    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper passes kwargs on
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return False
    config = model.config.get_text_config(decoder=True)
    window = getattr(config, "sliding_window", None)
    if window and max(len(ids) for ids in encoded) + settings.max_new_tokens > window:
        return False
    layers = DynamicCache(config=config).layers
    return bool(layers) and all(isinstance(layer, DynamicLayer) for layer in layers)


# Prompts whose token ids start alike (a persona's system prompt) share one prefill of that start when it is at
# least this long; shorter shared starts ("<|im_start|>system\nYou are") are not worth a separate forward pass.
MIN_SHARED_PREFIX = 8


def shared_prefixes(encoded: Sequence[Sequence[int]], min_length: int = MIN_SHARED_PREFIX) -> list[int]:
    """For each prompt, the length of the start it shares with at least one other prompt's group (0 if none).

    Prompts are grouped in sorted order while their common start stays at least ``min_length`` tokens; a group's
    prefix is the start all of its prompts share, never a whole prompt (its last token must be fed to generate)."""
    order = sorted(range(len(encoded)), key=lambda i: list(encoded[i]))
    shared = [0] * len(encoded)

    def common(a: Sequence[int], b: Sequence[int]) -> int:
        return len(os.path.commonprefix([list(a), list(b)]))  # element-wise on any lists, not just paths

    group: list[int] = []
    length = 0
    for index in order + [-1]:
        if index >= 0 and group:
            candidate = min(length, common(encoded[group[0]], encoded[index]))
            if candidate >= min_length:
                group.append(index)
                length = candidate
                continue
        if len(group) > 1:
            cut = min([length] + [len(encoded[i]) - 1 for i in group])
            if cut >= min_length:
                for member in group:
                    shared[member] = cut
        group, length = ([index], len(encoded[index])) if index >= 0 else ([], 0)
    return shared


def _forward_into_cache(model, input_ids: torch.Tensor, cache) -> None:
    """Run ``input_ids`` through the model after what ``cache`` holds, appending their keys and values to it.
    No attention mask: causal attention alone, so a right-padded row's real tokens never see its padding."""
    with torch.no_grad():
        model(input_ids=input_ids.to(next(model.parameters()).device), cache=cache, use_cache=True, logits_to_keep=1)


@functools.cache  # one class, not a new one per batch
def _preallocated_layer_class():
    from transformers.cache_utils import DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """A DynamicLayer that writes each step's keys and values into buffers allocated once for the whole
        generation. DynamicLayer concatenates, copying the whole cache at every decode step of every layer: on a CPU
        that copy took as long as the model's matrix products (torch.profiler, SmolLM2, batch 16)."""

        def __init__(self, capacity: int) -> None:
            super().__init__()
            self.capacity = capacity
            self.buffers: tuple[torch.Tensor, torch.Tensor] | None = None

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            used = self.get_seq_length()
            need = used + key_states.shape[-2]
            buffers = self.buffers
            # New buffers when they are too small, or when keys no longer live in them (crop, batch_select_indices)
            if (buffers is None or buffers[0].shape[-2] < need or buffers[0].shape[:-2] != key_states.shape[:-2]
                    or (used and self.keys.data_ptr() != buffers[0].data_ptr())):
                capacity = max(need, self.capacity)
                buffers = tuple(s.new_empty((*s.shape[:-2], capacity, s.shape[-1])) for s in (key_states, value_states))
                if used:
                    buffers[0][..., :used, :] = self.keys
                    buffers[1][..., :used, :] = self.values
                self.buffers = buffers
            buffers[0][..., used:need, :] = key_states
            buffers[1][..., used:need, :] = value_states
            self.keys, self.values = buffers[0][..., :need, :], buffers[1][..., :need, :]
            return self.keys, self.values

    return PreallocatedLayer


def _cache_from(model, layers: Sequence[tuple[torch.Tensor, torch.Tensor]], capacity: int = 0):
    """A cache of the model's own layer types holding ``layers``; with ``capacity``, its full-attention layers
    write into buffers of that many positions instead of growing by concatenation."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config.get_text_config(decoder=True))
    if capacity:
        preallocated = _preallocated_layer_class()
        cache.layers = [preallocated(capacity) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    for layer, (keys, values) in zip(cache.layers, layers):
        layer.update(keys, values)
    return cache


Layers = list[tuple[torch.Tensor, torch.Tensor]]


class _Prefiller:
    """Prefills prompts without their last token into key/value caches, and merges a batch's caches, left-padded,
    for one decode batch.

    Prompts that share a start (see shared_prefixes) get that start prefilled once. The rest of each prompt is
    prefilled in length-bucketed batches, right-padded after the shared start, so every row's positions follow
    on from the start; the padding's keys and values are sliced off before the merge."""

    def __init__(self, model, encoded: Sequence[Sequence[int]], batch_size: int) -> None:
        self.model = model
        self.encoded = [list(ids) for ids in encoded]
        self.shared = shared_prefixes(self.encoded)
        self.batch_size = batch_size
        self.prefixes: dict[tuple[int, ...], Layers] = {(): []}

    @staticmethod
    def _layers(cache) -> Layers:
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _prefix(self, index: int) -> tuple[int, ...]:
        start = tuple(self.encoded[index][: self.shared[index]])
        if start not in self.prefixes:
            cache = _cache_from(self.model, [])
            _forward_into_cache(self.model, torch.tensor([start]), cache)
            self.prefixes[start] = self._layers(cache)
        return start

    def _rows(self, start: tuple[int, ...], members: Sequence[int], pad: int) -> dict[int, Layers]:
        prefix = self.prefixes[start]
        rests = [self.encoded[i][len(start):-1] for i in members]
        rows: dict[int, Layers] = {i: prefix for i, rest in zip(members, rests) if not rest}
        todo = [j for j, rest in enumerate(rests) if rest]
        for bucket in length_buckets([len(rests[j]) for j in todo], self.batch_size):
            chosen = [todo[b] for b in bucket]
            width = max(len(rests[j]) for j in chosen)
            input_ids = torch.full((len(chosen), width), pad, dtype=torch.long)
            for row, j in enumerate(chosen):
                input_ids[row, : len(rests[j])] = torch.tensor(rests[j])  # right padding, after the shared start
            cache = _cache_from(self.model, [(k.expand(len(chosen), -1, -1, -1), v.expand(len(chosen), -1, -1, -1))
                                             for k, v in prefix])
            _forward_into_cache(self.model, input_ids, cache)
            for row, j in enumerate(chosen):
                keep = len(start) + len(rests[j])
                rows[members[j]] = [(k[row:row + 1, :, :keep], v[row:row + 1, :, :keep]) for k, v in self._layers(cache)]
        return rows

    def batch_cache(self, batch: Sequence[int], width: int, pad: int, new_tokens: int):
        """The merged cache of ``batch``'s prompts without their last token, left-padded to ``width - 1``; None
        when a prompt has a single token (nothing to prefill: generate() then does the whole batch)."""
        if any(len(self.encoded[i]) < 2 for i in batch):
            return None
        groups: dict[tuple[int, ...], list[int]] = {}
        for index in batch:
            groups.setdefault(self._prefix(index), []).append(index)
        rows: dict[int, Layers] = {}
        for start, members in groups.items():
            rows.update(self._rows(start, members, pad))
        merged = []
        for layer in range(len(rows[batch[0]])):
            keys, values = [], []
            for index in batch:
                k, v = rows[index][layer]
                keys.append(torch.nn.functional.pad(k, (0, 0, width - 1 - k.shape[-2], 0)))
                values.append(torch.nn.functional.pad(v, (0, 0, width - 1 - v.shape[-2], 0)))
            merged.append((torch.cat(keys), torch.cat(values)))
        return _cache_from(self.model, merged, capacity=width + new_tokens)


def generate(model, tokenizer, prompts: Sequence[str], settings: GenerationSettings, *,
             stop_strings: Sequence[str] = (), add_special_tokens: bool = True,
             progress: Callable[[int], None] = lambda n: None) -> list[str]:
    """One answer per prompt, in order; the prompt is stripped and the text cut at the first stop string.

    Where the model's cache allows (see _can_prefill_separately), each prompt is prefilled on its own, from the cached
    prefill of the start it shares with other prompts, and a batch of them decodes together: the prefill computes
    no padding and no shared system prompt twice, and the decode steps are shared by the whole batch. Otherwise
    prompts are length-bucketed and generate() prefills each batch padded."""
    if not prompts:
        return []
    encoded = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    eos_ids = _stop_token_ids(tokenizer, stop_strings)
    text_stops = split_stops(tokenizer, stop_strings)[1]
    answers: list[str] = [""] * len(prompts)
    model.eval()
    separately = _can_prefill_separately(model, settings, encoded)
    prefiller = _Prefiller(model, encoded, settings.batch_size) if separately else None
    # With separate prefills, padding costs only a little attention in the decode steps: no width cap.
    ratio = float("inf") if prefiller else MAX_WIDTH_RATIO
    start = 0
    for batch in length_buckets([len(ids) for ids in encoded], settings.batch_size, ratio):
        output, width = _generate_batch(model, tokenizer, encoded, batch, settings, prefiller, eos_ids,
                                        seed=settings.seed + start,  # seeded per batch: reproducible for a batch size
                                        extra={"stop_strings": list(text_stops), "tokenizer": tokenizer}
                                        if text_stops else {})
        for row, index in enumerate(batch):
            text = tokenizer.decode(output[row, width:], skip_special_tokens=True)
            answers[index] = cut_at_stop(text, text_stops)
        progress(len(batch))
        start += len(batch)
    return answers


def generate_together(model, tokenizer, encoded: Sequence[Sequence[int]], settings: GenerationSettings, *,
                      eos_ids: Sequence[int], extra: dict | None = None) -> tuple[torch.Tensor, int]:
    """Token-id prompts decoded as one batch, prefilled as generate() does; returns generate()'s output and the
    padded prompt width (each row's answer starts there). ``extra`` goes to model.generate (a streamer that watches
    every step, stopping criteria that end single rows): `persona serve` decodes concurrent requests with it."""
    model.eval()
    encoded = [list(ids) for ids in encoded]
    separately = _can_prefill_separately(model, settings, encoded)
    prefiller = _Prefiller(model, encoded, len(encoded)) if separately else None
    return _generate_batch(model, tokenizer, encoded, list(range(len(encoded))), settings, prefiller, list(eos_ids),
                           seed=settings.seed, extra=extra or {})


def _generate_batch(model, tokenizer, encoded: Sequence[Sequence[int]], batch: Sequence[int],
                    settings: GenerationSettings, prefiller: _Prefiller | None, eos_ids: Sequence[int], *,
                    seed: int, extra: dict) -> tuple[torch.Tensor, int]:
    """One left-padded batch of ``encoded[i] for i in batch`` through model.generate: (output, prompt width)."""
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(encoded[i]) for i in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    for row, index in enumerate(batch):
        ids = encoded[index]
        input_ids[row, width - len(ids):] = torch.tensor(ids)  # left padding: every prompt ends at the edge
        attention[row, width - len(ids):] = 1
    kwargs = {"max_new_tokens": settings.max_new_tokens, "do_sample": settings.temperature > 0, "pad_token_id": pad,
              "eos_token_id": list(eos_ids) or None, "use_cache": True}
    if prefiller is not None:
        cache = prefiller.batch_cache(batch, width, pad, settings.max_new_tokens)
        if cache is not None:
            kwargs["cache"] = cache  # generate() sees every position but the last one cached
    if settings.temperature > 0:
        torch.manual_seed(seed)
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    kwargs.update(decoding_kwargs(settings, width, eos_ids))
    kwargs.update(extra)
    with torch.no_grad():
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device), **kwargs)
    return output, width
