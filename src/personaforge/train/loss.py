"""Causal-LM loss computed only where there are labels: the lm_head never sees prompt positions."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from personaforge.train.tokenize import IGNORE


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are upcast for a stable softmax; float64 stays float64."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def _parts(model):
    """(decoder, lm_head, softcap) of a causal LM, through a PEFT wrapper if there is one."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else base.model
    head = base.get_output_embeddings()
    config = getattr(base, "config", None)
    softcap = getattr(getattr(config, "text_config", config), "final_logit_softcapping", None)
    return decoder, head, softcap


def labelled_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies over labelled positions, and how many there were."""
    decoder, head, softcap = _parts(model)
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    hidden = decoder(**inputs, use_cache=False).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    count = int(keep.sum())
    if count == 0:
        return hidden.sum() * 0.0, 0  # keeps the graph (and DDP) happy on an all-prompt batch
    logits = _upcast(head(hidden[:, :-1][keep]))
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    return F.cross_entropy(logits, targets[keep], reduction="sum"), count


def full_logits_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The ordinary way (full-sequence logits), for comparisons in tests and benchmarks."""
    inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
    logits = _upcast(model(**inputs, use_cache=False).logits[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1),
                           ignore_index=IGNORE)
