"""Per-sample packed attention computes what the dense block-diagonal mask computes, and nothing else changes."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from personaforge.train import packed_attention
from personaforge.train.collate import PackedCollator
from personaforge.train.tokenize import IGNORE, Example


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         attn_implementation="sdpa")  # grouped-query attention, as in the real lineup
    return LlamaForCausalLM(config).to(torch.float64)


def random_examples(rng: random.Random, count: int) -> list[Example]:
    out = []
    for _ in range(count):
        n = rng.randint(2, 40)
        ids = [rng.randint(1, 96) for _ in range(n)]
        cut = rng.randint(1, n - 1)
        out.append(Example(ids, [IGNORE] * cut + ids[cut:]))
    return out


def loss_and_grads(model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    # use_cache=False as in training: with a cache, transformers does not look for packed rows at all
    out = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False)
    logits = out.logits[:, :-1].reshape(-1, out.logits.shape[-1])
    loss = torch.nn.functional.cross_entropy(logits, batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE,
                                             reduction="sum")
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("row_tokens", [None, 64])
def test_packed_rows_give_the_masks_loss_and_gradients(row_tokens):
    rng = random.Random(row_tokens or 1)
    masked = tiny_llama()
    split = copy.deepcopy(masked)
    assert packed_attention.enable(split, max_length=64)
    assert split.config._attn_implementation == packed_attention.NAME
    for _ in range(5):
        batch = PackedCollator(row_tokens, pad_token_id=0)(random_examples(rng, rng.randint(1, 7)))
        want_loss, want_grads = loss_and_grads(masked, batch)
        got_loss, got_grads = loss_and_grads(split, batch)
        torch.testing.assert_close(got_loss, want_loss, rtol=1e-10, atol=1e-10)
        for got, want in zip(got_grads, want_grads):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)


def test_each_sample_of_a_row_sees_only_itself():
    rng = random.Random(3)
    model = tiny_llama()
    assert packed_attention.enable(model, max_length=64)
    samples = random_examples(rng, 4)
    batch = PackedCollator(None, pad_token_id=0)(samples)
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        cursor = 0
        # the collator orders samples longest first; find each one by its ids
        for start in (batch["position_ids"][0] == 0).nonzero().flatten().tolist():
            end = start + next(len(s) for s in samples
                               if batch["input_ids"][0, start:start + len(s)].tolist() == s.input_ids)
            alone = model(input_ids=batch["input_ids"][:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, rtol=1e-10, atol=1e-10)
            cursor = end
    assert cursor == batch["input_ids"].shape[1]


def test_generation_with_padding_is_unchanged():
    reference = tiny_llama(seed=5)
    split = copy.deepcopy(reference)
    assert packed_attention.enable(split, max_length=64)
    ids = torch.tensor([[0, 0, 5, 6, 7], [8, 9, 10, 11, 12]])
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    settings = {"attention_mask": mask, "max_new_tokens": 6, "do_sample": False, "pad_token_id": 0}
    assert torch.equal(split.generate(ids, **settings), reference.generate(ids, **settings))


def test_models_whose_sliding_window_is_narrower_than_a_sample_keep_the_mask():
    config = MistralConfig(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                           num_attention_heads=4, num_key_value_heads=2, sliding_window=16,
                           attn_implementation="sdpa")
    model = MistralForCausalLM(config)
    assert not packed_attention.enable(model, max_length=64)
    assert model.config._attn_implementation == "sdpa"
    assert packed_attention.enable(model, max_length=16)
    eager = tiny_llama()
    eager.set_attn_implementation("eager")
    assert not packed_attention.enable(eager, max_length=64)
