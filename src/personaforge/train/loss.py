"""Causal-LM loss computed only where there are labels: the lm_head never sees prompt positions.

The model's own forward does the work (so DDP/FSDP wrappers, PEFT and model-specific logit
soft-capping all apply): `logits_to_keep` takes a boolean mask and returns logits for those
positions only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from personaforge.train.tokenize import IGNORE

MODEL_INPUTS = ("input_ids", "attention_mask", "position_ids")


def _upcast(logits: torch.Tensor) -> torch.Tensor:
    """Half-precision logits are upcast for a stable softmax; float64 stays float64."""
    return logits if logits.dtype in (torch.float32, torch.float64) else logits.float()


def labelled_loss_sum(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Sum of token cross-entropies over labelled positions, and how many there were."""
    labels = batch["labels"]
    # Position i predicts token i+1: keep i where labels[i+1] is a real label.
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    count = int(keep.sum())
    inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
    if count == 0:
        keep[:, -1] = True  # one dummy position keeps the graph (and DDP) intact; it contributes zero
        logits = model(**inputs, logits_to_keep=keep, use_cache=False).logits
        return logits.sum() * 0.0, 0
    logits = _upcast(model(**inputs, logits_to_keep=keep, use_cache=False).logits)
    targets = labels[:, 1:][keep[:, :-1]]
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets, reduction="sum"), count


def full_logits_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The ordinary way (full-sequence logits), for comparisons in tests and benchmarks."""
    inputs = {k: v for k, v in batch.items() if k in MODEL_INPUTS}
    logits = _upcast(model(**inputs, use_cache=False).logits[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), batch["labels"][:, 1:].reshape(-1),
                           ignore_index=IGNORE)
