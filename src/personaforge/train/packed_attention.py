"""Per-sample causal attention for packed rows, without a dense mask.

transformers turns restarting position ids into a dense block-diagonal mask, and with an explicit mask
PyTorch's CPU SDPA cannot use its causal fast path: the whole row's scores are computed, masked and kept for
backward. Here each sample of a packed row gets its own ``is_causal`` SDPA call over its own slice, so the work
and memory are those of the samples alone, the row can be as long as the batch (no filler), and the maths is the
same as the mask's. Anything else (a padding mask, a KV cache, generation) goes to transformers' own sdpa path.
"""

from __future__ import annotations

import torch

NAME = "personaforge_packed_sdpa"


def _segments(positions: torch.Tensor) -> list[tuple[int, int]]:
    """[start, end) of each sample in a row whose position ids restart at 0 for every sample."""
    starts = (positions == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return list(zip(starts, [*starts[1:], positions.shape[0]]))


def packed_sdpa_attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                                  scaling: float | None = None, position_ids: torch.Tensor | None = None,
                                  **kwargs):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    packed = (attention_mask is None and position_ids is not None and query.shape[2] == key.shape[2] > 1
              and getattr(module, "is_causal", True))
    if not packed:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      position_ids=position_ids, **kwargs)
    positions = position_ids.expand(query.shape[0], -1)
    rows = []
    for row in range(query.shape[0]):
        parts = [
            sdpa_attention_forward(module, query[row:row + 1, :, start:end], key[row:row + 1, :, start:end],
                                   value[row:row + 1, :, start:end], None, dropout=dropout, scaling=scaling,
                                   is_causal=True)[0]
            for start, end in _segments(positions[row])
        ]
        rows.append(torch.cat(parts, dim=1) if len(parts) > 1 else parts[0])
    return (torch.cat(rows, dim=0) if len(rows) > 1 else rows[0]), None


def _mask(*, attention_mask=None, q_offset=0, kv_offset=0, q_length=None, kv_length=None, **kwargs):
    """No mask for a packed training row (the attention function splits it); sdpa's mask for anything else."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None and not q_offset and not kv_offset and q_length == kv_length:
        return None
    return sdpa_mask(attention_mask=attention_mask, q_offset=q_offset, kv_offset=kv_offset, q_length=q_length,
                     kv_length=kv_length, **kwargs)


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, packed_sdpa_attention_forward)
    AttentionMaskInterface.register(NAME, _mask)


def supports(model, max_length: int) -> bool:
    """Only where it computes exactly what the model's sdpa path would: sdpa, full causal attention.

    A sliding window narrower than a sample would be ignored by a plain causal call, so such models keep the mask.
    """
    config = model.config
    if getattr(config, "_attn_implementation", None) != "sdpa":
        return False
    text_config = getattr(config, "text_config", None)
    for text in [config] + ([text_config] if text_config is not None else []):
        window = getattr(text, "sliding_window", None)
        if window and (getattr(text, "use_sliding_window", True) is not False) and window < max_length:
            return False
    return True


def enable(model, max_length: int) -> bool:
    """Switch ``model`` (a PEFT or plain transformers model) to per-sample packed attention where supported."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not supports(base, max_length):
        return False
    register()
    base.set_attn_implementation(NAME)
    return base.config._attn_implementation == NAME
