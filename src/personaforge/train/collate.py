"""Batching without static padding.

Packed (default): a batch's samples are laid end to end in one row, with position ids restarting at 0 for
each sample. The attention splits the row at those restarts (flash attention's variable-length kernels, or
per-sample sdpa calls: see packed_attention), so samples never attend across their boundary and no pad token
is ever computed. Models left on a dense block-diagonal mask (eager, sliding windows) get rows capped at
max_length instead. Unpacked: right-padded to the longest sample in the batch, not to max_length.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from personaforge.train.tokenize import IGNORE, Example


class PackedCollator:
    """Lay a batch's samples end to end, in rows of at most ``row_tokens`` tokens (first-fit decreasing).

    ``row_tokens=None`` gives one row with no filler, for attention that splits it per sample. A dense
    block-diagonal mask costs the square of the row, so for it rows are capped (at max_length), which keeps
    that cost near the unpacked one. Short rows are
    topped up with pad tokens that form their own position block (they attend only to each other and carry
    no labels), so no attention_mask is needed and samples still never see each other.
    """

    def __init__(self, row_tokens: int | None = None, pad_token_id: int = 0) -> None:
        self.row_tokens = row_tokens
        self.pad_token_id = pad_token_id

    def _rows(self, examples: Sequence[Example]) -> list[list[Example]]:
        if self.row_tokens is None:
            return [list(examples)]
        rows: list[list[Example]] = []
        room: list[int] = []
        for example in sorted(examples, key=len, reverse=True):
            for index, free in enumerate(room):
                if len(example) <= free:
                    rows[index].append(example)
                    room[index] -= len(example)
                    break
            else:
                rows.append([example])
                room.append(max(self.row_tokens, len(example)) - len(example))
        # First-fit fills early rows and leaves the last ones short, and every row is as wide as the fullest, so the
        # rest is filler that is computed for nothing. Spreading the same samples over the same number of rows,
        # longest first onto the emptiest row, often gives a narrower batch: take whichever is narrower.
        balanced: list[list[Example]] = [[] for _ in rows]
        for example in sorted(examples, key=len, reverse=True):
            min(balanced, key=lambda row: sum(map(len, row))).append(example)
        width = max(sum(map(len, row)) for row in rows)
        return balanced if max(sum(map(len, row)) for row in balanced) < width else rows

    def __call__(self, examples: Sequence[Example]) -> dict[str, torch.Tensor]:
        rows = self._rows(examples)
        width = max(sum(len(e) for e in row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            cursor = 0
            for example in row:
                n = len(example)
                input_ids[r, cursor:cursor + n] = torch.tensor(example.input_ids)
                # The first token of a sample is never predicted from the previous sample's last token.
                labels[r, cursor + 1:cursor + n] = torch.tensor(example.labels[1:], dtype=torch.long)
                positions[r, cursor:cursor + n] = torch.arange(n)
                cursor += n
            positions[r, cursor:] = torch.arange(width - cursor)  # padding: a block of its own
        real = torch.tensor(sum(len(e) for e in examples))
        return {"input_ids": input_ids, "labels": labels, "position_ids": positions, "real_tokens": real}


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
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask, "real_tokens": mask.sum()}
