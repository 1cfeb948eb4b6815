"""Batching without static padding.

Packed (default): a batch's samples are laid end to end in one row, with position ids restarting at 0 for
each sample. transformers turns restarting position ids into a block-diagonal attention mask (sdpa/eager)
or variable-length kernels (flash attention), so samples never attend across their boundary, and no pad
token is ever computed. Unpacked: right-padded to the longest sample in the batch, not to max_length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from personaforge.train.tokenize import IGNORE, Example


class PackedCollator:
    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        input_ids: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for example in examples:
            input_ids.extend(example.input_ids)
            # The first token of a sample is never predicted from the previous sample's last token.
            labels.extend([IGNORE] + example.labels[1:])
            positions.extend(range(len(example.input_ids)))
        return {
            "input_ids": torch.tensor([input_ids], dtype=torch.long),
            "labels": torch.tensor([labels], dtype=torch.long),
            "position_ids": torch.tensor([positions], dtype=torch.long),
        }


class PaddedCollator:
    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        width = max(len(e) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example)
            input_ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            mask[row, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}
