"""Seeded split by source segment, stratified by persona."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from personaforge.dataset.segments import Segment


@dataclass
class Split:
    eval_segments: set[str]
    warnings: list[str] = field(default_factory=list)

    def is_eval(self, segment_id: str) -> bool:
        return segment_id in self.eval_segments


def split_segments(segments: list[Segment], fraction: float, seed: int) -> Split:
    """Hold out round(fraction × n) of each persona's segments; every derived record follows its segment."""
    by_persona: dict[str, list[str]] = defaultdict(list)
    for segment in segments:
        by_persona[segment.persona].append(segment.id)
    held: set[str] = set()
    warnings: list[str] = []
    for persona in sorted(by_persona):
        ids = sorted(by_persona[persona])
        # One RNG per persona, seeded by seed and name: adding a persona does not reshuffle the others.
        random.Random(f"{seed}:{persona}").shuffle(ids)
        count = round(fraction * len(ids))
        if fraction > 0 and count == 0:
            warnings.append(
                f"persona '{persona}' has no eval record at eval_fraction {fraction} ({len(ids)} segments);"
                " raise --eval-fraction or add transcripts"
            )
        held.update(ids[:count])
    return Split(held, warnings)
