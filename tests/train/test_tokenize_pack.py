"""Label masking, packing boundaries and the truncation policy, on the tiny model's real tokenizer."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from personaforge.prompting import Exchange, PromptFormat, chat_messages, choose_prompt_format, plain_completion, plain_prompt
from personaforge.train.collate import PackedCollator, PaddedCollator
from personaforge.train.loss import full_logits_loss, labelled_loss_sum
from personaforge.train.tokenize import IGNORE, TokenizeStats, tokenize_record, tokenize_records


def record(question: str, answer: str, history=(), system: str = "You are Ada.") -> dict:
    history = [Exchange(q, a) for q, a in history]
    return {"id": question[:10], "persona": "Ada", "prompt": plain_prompt(system, "Ada", question, history),
            "completion": plain_completion(answer), "messages": chat_messages(system, question, history, answer)}


def test_prompt_tokens_are_masked_and_eos_is_learned(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    rec = record("What happened?", "The lamp turns.")
    example = tokenize_record(rec, PromptFormat("plain"), tokenizer, 256, TokenizeStats())
    prompt_ids = tokenizer(rec["prompt"])["input_ids"]
    completion_ids = tokenizer(rec["completion"], add_special_tokens=False)["input_ids"]
    assert example.input_ids == prompt_ids + completion_ids + [tokenizer.eos_token_id]
    assert example.labels == [IGNORE] * len(prompt_ids) + completion_ids + [tokenizer.eos_token_id]


def test_chat_style_uses_the_template_and_ends_on_its_turn_marker(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    fmt = choose_prompt_format("auto", tokenizer, has_messages=True, has_plain=True)
    assert fmt.style == "chat"
    example = tokenize_record(record("Why?", "Because."), fmt, tokenizer, 256, TokenizeStats())
    labelled = [t for t, label in zip(example.input_ids, example.labels) if label != IGNORE]
    assert tokenizer.decode(labelled) == "Because.<|im_end|>"
    prompt = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels) if label == IGNORE])
    assert prompt.endswith("<|im_start|>user\nWhy?<|im_end|>\n<|im_start|>assistant\n")


def test_truncation_cuts_oldest_context_first_then_drops_answers_that_cannot_fit(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    fmt = PromptFormat("plain")
    history = [("First question about the lamp?", "The lamp turns every ten seconds, " * 3),
               ("Second question?", "Storms arrive sideways here.")]
    rec = record("Third?", "Bread wants patience.", history)
    full = tokenize_record(rec, fmt, tokenizer, 10_000, TokenizeStats())
    without_first = tokenize_record(record("Third?", "Bread wants patience.", history[1:]), fmt, tokenizer, 10_000,
                                    TokenizeStats())
    stats = TokenizeStats()
    cut = tokenize_record(rec, fmt, tokenizer, len(full) - 1, stats)
    assert cut.input_ids == without_first.input_ids  # the oldest exchange went, the answer stayed whole
    assert (stats.context_cut, stats.dropped) == (1, 0)
    long_answer = record("Q?", "The lamp turns every ten seconds. " * 40)
    examples, stats = tokenize_records([long_answer, rec], fmt, tokenizer, 60)
    assert stats.dropped == 1 and stats.dropped_ids == ["Q?"] and len(examples) == 1
    assert all(len(e) <= 60 for e in examples)


def _examples(tokenizer):
    fmt = PromptFormat("plain")
    records = [record("What happened?", "The lamp turns every ten seconds."),
               record("And bread?", "Bread wants patience, and the oven takes an hour."),
               record("Mornings?", "Rye and caraway.")]
    return tokenize_records(records, fmt, tokenizer, 256)[0]


@pytest.mark.parametrize("row_tokens", [None, 80], ids=["one-row", "rows-of-80"])
def test_packed_and_unpacked_losses_are_equal_on_the_same_batch(tiny_model, row_tokens):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64, attn_implementation="sdpa").eval()
    examples = _examples(tokenizer)
    packed = PackedCollator(row_tokens, tokenizer.pad_token_id)(examples)
    padded = PaddedCollator(tokenizer.pad_token_id)(examples)
    real = sum(len(e) for e in examples)
    if row_tokens is None:
        assert packed["input_ids"].shape == (1, real)  # not a single pad token
    else:
        assert packed["input_ids"].shape[0] == 2 and packed["input_ids"].shape[1] <= max(row_tokens, max(map(len, examples)))
    with torch.no_grad():
        packed_sum, packed_n = labelled_loss_sum(model, packed)
        padded_sum, padded_n = labelled_loss_sum(model, padded)
        reference = full_logits_loss(model, padded)
    assert packed_n == padded_n == sum(sum(1 for x in e.labels[1:] if x != IGNORE) for e in examples)
    assert torch.allclose(packed_sum / packed_n, padded_sum / padded_n, rtol=1e-10, atol=1e-10)
    assert torch.allclose(padded_sum / padded_n, reference, rtol=1e-10, atol=1e-10)


def test_packed_samples_never_attend_across_their_boundary(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64, attn_implementation="sdpa").eval()
    examples = _examples(tokenizer)
    packed = PackedCollator(None, tokenizer.pad_token_id)(examples)
    with torch.no_grad():
        # use_cache=False as in training: with a KV cache transformers skips packed-sequence masking
        together = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"], use_cache=False).logits[0]
        start = len(examples[0])
        alone = model(input_ids=torch.tensor([examples[1].input_ids])).logits[0]
    assert torch.allclose(together[start:start + len(examples[1])], alone, atol=1e-10)
    # and the check can fail: without restarting positions the second sample sees the first
    with torch.no_grad():
        leaky = model(input_ids=packed["input_ids"], use_cache=False).logits[0]
    assert not torch.allclose(leaky[start:start + len(examples[1])], alone, atol=1e-6)
