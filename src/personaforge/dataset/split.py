"""Seeded split by source segment, stratified by persona, with every chunk of one turn kept together.

Eval holds real questions first: a persona's turns that answer a real question are drawn (seeded) before
monologue turns, one-chunk replies before long ones, so held-out records are real question → real answer
pairs wherever the transcripts have enough of them.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

from personaforge.dataset.segments import Segment
from personaforge.dataset.text import question_needs_context


@dataclass
class Split:
    eval_segments: set[str]
    warnings: list[str] = field(default_factory=list)

    def is_eval(self, segment_id: str) -> bool:
        return segment_id in self.eval_segments


def split_segments(segments: list[Segment], fraction: float, seed: int) -> Split:
    """Hold out about round(fraction × n) of each persona's segments, whole turns at a time."""
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    asked: set[str] = set()
    # Exchanges a later follow-up question leans on ("Did you tell the family that?"): held out, the follow-up
    # would lose its context in training. They are held out only when nothing else is left.
    leaned_on = {earlier for segment in segments if segment.question is not None
                 and question_needs_context(segment.question) for earlier, _ in segment.context}
    for segment in segments:
        group = segment.group or segment.id
        groups[segment.persona][group].append(segment.id)
        if segment.question is not None and segment.chunk == 0 and (
                segment.context or not question_needs_context(segment.question)):
            asked.add(group)  # a real question that makes sense on its own or with its conversation
    for persona_groups in groups.values():
        for group, ids in persona_groups.items():
            if leaned_on & set(ids):
                asked.discard(group)
    held: set[str] = set()
    warnings: list[str] = []
    for persona in sorted(groups):
        turns = groups[persona]
        ids = sorted(turns)
        # One RNG per persona, seeded by seed and name: adding a persona does not reshuffle the others.
        random.Random(f"{seed}:{persona}").shuffle(ids)
        # Real question → answer turns first (a one-chunk reply before a long one, whose later chunks would be
        # held out behind continuation prompts), then the rest.
        ordered = ([g for g in ids if g in asked and len(turns[g]) == 1] + [g for g in ids if g in asked and len(turns[g]) > 1]
                   + [g for g in ids if g not in asked])
        total = sum(len(v) for v in turns.values())
        count = round(fraction * total)
        if fraction > 0 and count == 0:
            warnings.append(
                f"persona '{persona}' has no eval record at eval_fraction {fraction} ({total} segments);"
                " raise --eval-fraction or add transcripts"
            )
        taken = 0
        for group in ordered:
            if taken >= count:
                break
            if taken + len(turns[group]) <= count:
                held.update(turns[group])
                taken += len(turns[group])
    return Split(held, warnings)
