"""How PackedCollator lays a batch into rows: every sample once, whole, and as little filler as it can."""

from __future__ import annotations

import random

import torch

from personaforge.train.collate import PackedCollator
from personaforge.train.tokenize import IGNORE, Example


def examples(lengths: list[int]) -> list[Example]:
    # token ids encode (sample, position) so each sample can be found again in the packed rows
    return [Example([1000 * (i + 1) + t for t in range(n)], [IGNORE] + [1000 * (i + 1) + t for t in range(1, n)])
            for i, n in enumerate(lengths)]


def first_fit_decreasing(lengths: list[int], cap: int) -> tuple[int, int]:
    """Rows and width of plain first-fit decreasing: the layout the collator must never be worse than."""
    rows: list[int] = []
    for n in sorted(lengths, reverse=True):
        for i, used in enumerate(rows):
            if used + n <= cap:
                rows[i] += n
                break
        else:
            rows.append(n)
    return len(rows), max(rows)


def samples_in(batch: dict) -> list[list[int]]:
    found = []
    for ids, positions in zip(batch["input_ids"].tolist(), batch["position_ids"].tolist()):
        current: list[int] = []
        for token, position in zip(ids, positions):
            if position == 0 and current:
                found.append(current)
                current = []
            current.append(token)
        found.append(current)
    return sorted(s for s in found if s[0] != 0)  # pad blocks (id 0) are not samples


def test_short_last_row_is_balanced_into_a_narrower_batch():
    # first-fit into rows of 30: [20, 10] and [12, 8] → width 30; balanced: [20, 8] and [12, 10] → width 28
    batch = PackedCollator(30, pad_token_id=0)(examples([20, 12, 10, 8]))
    assert tuple(batch["input_ids"].shape) == (2, 28)
    assert samples_in(batch) == sorted(e.input_ids for e in examples([20, 12, 10, 8]))
    assert int(batch["real_tokens"]) == 50


def test_rows_hold_every_sample_once_and_are_never_wider_than_first_fit_or_the_cap():
    rng = random.Random(0)
    for _ in range(200):
        lengths = [rng.randint(3, 60) for _ in range(rng.randint(1, 9))]
        cap = rng.choice([40, 64, 100])
        batch = PackedCollator(cap, pad_token_id=0)(examples(lengths))
        assert samples_in(batch) == sorted(e.input_ids for e in examples(lengths))
        assert batch["input_ids"].shape[1] <= max(cap, max(lengths))
        labelled = int((batch["labels"] != IGNORE).sum())
        assert labelled == sum(n - 1 for n in lengths)  # each sample's first token is never a target
        rows, width = first_fit_decreasing(lengths, cap)
        assert batch["input_ids"].shape == (rows, width) or (
            batch["input_ids"].shape[0] == rows and batch["input_ids"].shape[1] < width)


def test_filler_is_labelled_nowhere_and_forms_its_own_position_block():
    batch = PackedCollator(30, pad_token_id=0)(examples([20, 12, 10, 8]))
    pad = batch["input_ids"] == 0
    assert not bool((batch["labels"][pad] != IGNORE).any())
    for row in range(batch["input_ids"].shape[0]):
        filler = pad[row].nonzero().flatten()
        if len(filler):
            assert torch.equal(batch["position_ids"][row, filler], torch.arange(len(filler)))
