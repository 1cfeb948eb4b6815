"""generate()'s prefill path: per-prompt prefill from shared prefixes, merged caches, preallocated cache layers.

The reference is generate()'s own padded prefill (the path models outside the fast path take), in float64 where
both must give the same greedy tokens.
"""

from __future__ import annotations

import random

import pytest
import torch

from personaforge import generate as gen
from personaforge.generate import GenerationSettings, generate, shared_prefixes

SYSTEM = "You are Ada. The lamp turns every ten seconds and I count each one."
PROMPTS = [
    f"{SYSTEM}\n\nHuman: What happened?\n\nAda:",
    f"{SYSTEM}\n\nHuman: Storms arrive sideways here, salt on the windows. Why?\n\nAda:",
    f"{SYSTEM}\n\nHuman: Bread?\n\nAda:",
    "Ships used to signal back with three short flashes. My father",
    "Mornings smell of rye and caraway. The oven takes an hour to heat, so I light it at three.",
    "Bread",
    f"{SYSTEM} Storms arrive sideways here.\n\nHuman: And the tower?\n\nAda:",
]


def _load(folder, dtype=torch.float64):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype), AutoTokenizer.from_pretrained(folder)


def _padded_prefill_only(monkeypatch) -> None:
    monkeypatch.setattr(gen, "_can_prefill_separately", lambda *args: False)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_prefilled_greedy_equals_generates_own_padded_prefill_in_float64(tiny_model, monkeypatch, batch_size):
    model, tokenizer = _load(tiny_model)
    settings = GenerationSettings(max_new_tokens=14, batch_size=batch_size)
    encoded = [tokenizer(p)["input_ids"] for p in PROMPTS]
    assert gen._can_prefill_separately(model, settings, encoded)
    assert sum(1 for n in shared_prefixes(encoded) if n) >= 4  # the system prompt really is shared
    fast = generate(model, tokenizer, PROMPTS, settings)
    _padded_prefill_only(monkeypatch)
    assert fast == generate(model, tokenizer, PROMPTS, settings)
    assert sum(bool(a) for a in fast) >= 5


def test_prefilled_cache_holds_the_padded_prefills_keys_and_values(tiny_model):
    """The merged cache equals what one padded forward pass over the batch computes, at every real position."""
    model, tokenizer = _load(tiny_model)
    encoded = [tokenizer(p)["input_ids"] for p in PROMPTS]
    batch = list(range(len(PROMPTS)))
    width = max(len(ids) for ids in encoded)
    cache = gen._Prefiller(model, encoded, batch_size=2).batch_cache(batch, width, tokenizer.pad_token_id, 5)
    ids = torch.full((len(batch), width - 1), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(encoded):
        ids[row, width - len(prompt):] = torch.tensor(prompt[:-1])
        mask[row, width - len(prompt):] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        reference = model(input_ids=ids, attention_mask=mask, position_ids=position_ids, use_cache=True).past_key_values
    for mine, theirs in zip(cache.layers, reference.layers):
        for row in range(len(batch)):
            real = mask[row].bool()
            assert torch.allclose(mine.keys[row][:, real], theirs.keys[row][:, real], atol=1e-10)
            assert torch.allclose(mine.values[row][:, real], theirs.values[row][:, real], atol=1e-10)


def test_prefilled_sampling_is_seeded_like_the_padded_path(tiny_model, monkeypatch):
    model, tokenizer = _load(tiny_model)
    # prompts within 1.5x of each other's length, so both paths batch them alike and draw the same random numbers
    prompts = [p for p in PROMPTS if p.startswith(SYSTEM) and "salt" not in p]
    settings = GenerationSettings(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=5, batch_size=len(prompts))
    fast = generate(model, tokenizer, prompts, settings)
    assert fast == generate(model, tokenizer, prompts, settings)
    _padded_prefill_only(monkeypatch)
    assert fast == generate(model, tokenizer, prompts, settings)


def test_prefilled_path_works_on_an_unmerged_lora_adapter(tiny_model, monkeypatch):
    from peft import LoraConfig, get_peft_model

    model, tokenizer = _load(tiny_model)
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False))
    settings = GenerationSettings(max_new_tokens=10, batch_size=4)
    fast = generate(peft_model, tokenizer, PROMPTS, settings)
    _padded_prefill_only(monkeypatch)
    assert fast == generate(peft_model, tokenizer, PROMPTS, settings)


def test_a_sliding_window_narrower_than_prompt_plus_answer_takes_the_padded_path(tiny_model):
    model, tokenizer = _load(tiny_model)
    encoded = [tokenizer(p)["input_ids"] for p in PROMPTS]
    longest = max(len(ids) for ids in encoded)
    model.config.sliding_window = longest + 10
    assert gen._can_prefill_separately(model, GenerationSettings(max_new_tokens=10), encoded)
    assert not gen._can_prefill_separately(model, GenerationSettings(max_new_tokens=11), encoded)


def test_shared_prefixes_group_prompts_by_their_common_start():
    a = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    prompts = [a + [11, 12], a + [13], a[:9] + [99, 98], [5, 5, 5], a[:3] + [0] * 20, a + [11, 14, 15]]
    shared = shared_prefixes(prompts, min_length=8)
    assert shared == [9, 9, 9, 0, 0, 9]
    # a prompt never shares all of itself: its last token is left for generate()
    assert shared_prefixes([a, a + [1]], min_length=4) == [9, 9]
    assert shared_prefixes([a], min_length=4) == [0]
    rng = random.Random(0)
    for _ in range(200):
        stems = [[rng.randint(0, 3) for _ in range(rng.randint(0, 12))] for _ in range(3)]
        prompts = [rng.choice(stems) + [rng.randint(0, 3) for _ in range(rng.randint(1, 6))] for _ in range(8)]
        shared = shared_prefixes(prompts, min_length=3)
        for ids, n in zip(prompts, shared):
            assert n == 0 or 3 <= n < len(ids)
            if n:  # someone else starts the same way
                assert sum(other[:n] == ids[:n] for other in prompts) >= 2


def test_preallocated_layer_behaves_like_a_growing_cache():
    from transformers.cache_utils import DynamicLayer

    layer, reference = gen._preallocated_layer_class()(capacity=6), DynamicLayer()
    rng = torch.Generator().manual_seed(0)
    steps = [torch.randn(2, 3, n, 4, generator=rng) for n in (3, 1, 1, 1, 2)]  # 8 positions: outgrows 6
    for step in steps:
        mine, theirs = layer.update(step, -step), reference.update(step, -step)
        assert torch.equal(mine[0], theirs[0]) and torch.equal(mine[1], theirs[1])
    assert layer.get_seq_length() == reference.get_seq_length() == 8
    layer.crop(-2), reference.crop(-2)
    extra = torch.randn(2, 3, 1, 4, generator=rng)
    assert torch.equal(layer.update(extra, extra)[0], reference.update(extra, extra)[0])
    select = torch.tensor([1])
    layer.batch_select_indices(select), reference.batch_select_indices(select)
    extra = extra[:1]
    assert torch.equal(layer.update(extra, extra)[1], reference.update(extra, extra)[1])


def test_prefilled_greedy_equals_padded_prefill_on_a_sliding_window_model(tiny_model, tmp_path, monkeypatch):
    """Gemma 3 (one of the embedded models) mixes sliding-window and full-attention layers."""
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8, sliding_window=128,
                              layer_types=["sliding_attention", "full_attention"], max_position_embeddings=512,
                              pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    model = Gemma3ForCausalLM(config).to(torch.float64).eval()
    settings = GenerationSettings(max_new_tokens=12, batch_size=4)
    encoded = [tokenizer(p)["input_ids"] for p in PROMPTS]
    assert gen._can_prefill_separately(model, settings, encoded)
    fast = generate(model, tokenizer, PROMPTS, settings)
    _padded_prefill_only(monkeypatch)
    assert fast == generate(model, tokenizer, PROMPTS, settings)
    assert sum(bool(a) for a in fast) >= 5
