"""LoRA dropout folded into the A projection: same maths as dropout → linear, less memory kept for backward."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from personaforge.train.trainer import DropoutLinear, fold_lora_dropout

torch.set_num_threads(1)


def test_forward_and_gradients_match_dropout_then_linear_with_the_same_mask():
    p, scale = 0.25, 1 / 0.75
    x = torch.randn(3, 5, 8, requires_grad=True)
    plain = torch.nn.Linear(8, 4, bias=False)
    fused = DropoutLinear(plain, p)
    torch.manual_seed(7)
    out = fused(x)
    out.pow(2).sum().backward()
    grad_x, grad_w = x.grad.clone(), plain.weight.grad.clone()

    torch.manual_seed(7)  # the same draw of the keep mask
    keep = torch.empty(x.shape, dtype=torch.bool).bernoulli_(1 - p)
    x.grad = plain.weight.grad = None
    reference = torch.nn.functional.linear(x * keep * scale, plain.weight)
    reference.pow(2).sum().backward()
    assert torch.allclose(out, reference, atol=1e-6)
    assert torch.allclose(grad_x, x.grad, atol=1e-5)
    assert torch.allclose(grad_w, plain.weight.grad, atol=1e-5)
    assert 0 < int((~keep).sum()) < keep.numel()  # the mask really dropped some inputs and kept others


def test_eval_mode_is_the_plain_projection_and_the_weight_is_shared():
    plain = torch.nn.Linear(6, 3, bias=False)
    fused = DropoutLinear(plain, 0.5).eval()
    x = torch.randn(4, 6)
    assert torch.equal(fused(x), plain(x))
    assert fused.weight is plain.weight
    assert list(fused.state_dict()) == list(plain.state_dict())  # adapters save and load as before


def test_drop_rate_is_p_and_kept_inputs_are_rescaled():
    fused = DropoutLinear(torch.nn.Linear(1000, 1000, bias=False), 0.2)
    with torch.no_grad():
        fused.weight.copy_(torch.eye(1000))
    out = fused(torch.ones(20, 1000))
    assert abs(float((out == 0).float().mean()) - 0.2) < 0.01
    assert torch.allclose(out[out != 0], torch.full_like(out[out != 0], 1 / 0.8))


def _saved_bytes(model, batch) -> int:
    """Bytes autograd keeps for backward in one training forward, parameters left out."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()

    def pack(tensor):
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in params:
            seen.add((ptr, tensor.untyped_storage().nbytes()))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(**batch).logits.sum()
    return sum(nbytes for _, nbytes in seen)


@pytest.fixture
def lora_model(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj", "down_proj"],
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def test_folding_keeps_the_model_and_its_adapter_keys_and_saves_less_for_backward(lora_model):
    batch = {"input_ids": torch.randint(0, 300, (2, 64))}
    lora_model.eval()
    with torch.no_grad():
        before_out = lora_model(**batch).logits
    keys = sorted(lora_model.state_dict())
    lora_model.train()
    before_saved = _saved_bytes(lora_model, batch)

    layers = lora_model.base_model.model.config.num_hidden_layers
    assert fold_lora_dropout(lora_model) == 3 * layers
    assert fold_lora_dropout(lora_model) == 0  # already folded
    assert sorted(lora_model.state_dict()) == keys
    lora_model.eval()
    with torch.no_grad():
        assert torch.allclose(lora_model(**batch).logits, before_out, atol=1e-6)
    lora_model.train()
    after_saved = _saved_bytes(lora_model, batch)
    assert after_saved < before_saved
    with torch.no_grad():  # B starts at zero, which would leave A's gradient zero whatever the mask
        for name, param in lora_model.named_parameters():
            if "lora_B" in name:
                param.normal_()
    lora_model(**batch).logits.float().pow(2).mean().backward()
    grads = [p.grad for n, p in lora_model.named_parameters() if "lora_A" in n]
    assert len(grads) == 3 * layers and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_zero_dropout_is_left_alone(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj"],
                                             task_type="CAUSAL_LM"))
    assert fold_lora_dropout(model) == 0
