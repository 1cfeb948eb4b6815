"""Leakage check: the longest word n-gram each eval completion shares with any train completion.

A suffix automaton over the eval completions is streamed with every train completion, so the whole
check is linear in the size of the data (1 MB of transcripts in well under a second).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from personaforge.dataset.text import norm_words


@dataclass(frozen=True)
class Leak:
    eval_id: str
    train_id: str
    length: int
    text: str


class _SuffixAutomaton:
    def __init__(self) -> None:
        self.next: list[dict[int, int]] = [{}]
        self.link: list[int] = [-1]
        self.length: list[int] = [0]
        self.end: list[int] = [-1]  # first end position of the state's strings
        self.last = 0

    def extend(self, token: int, position: int) -> None:
        cur = len(self.next)
        self.next.append({})
        self.length.append(self.length[self.last] + 1)
        self.link.append(0)
        self.end.append(position)
        p = self.last
        while p != -1 and token not in self.next[p]:
            self.next[p][token] = cur
            p = self.link[p]
        if p != -1:
            q = self.next[p][token]
            if self.length[p] + 1 == self.length[q]:
                self.link[cur] = q
            else:
                clone = len(self.next)
                self.next.append(dict(self.next[q]))
                self.length.append(self.length[p] + 1)
                self.link.append(self.link[q])
                self.end.append(self.end[q])
                while p != -1 and self.next[p].get(token) == q:
                    self.next[p][token] = clone
                    p = self.link[p]
                self.link[q] = clone
                self.link[cur] = clone
        self.last = cur


def find_leaks(eval_records: Sequence[tuple[str, str]], train_records: Sequence[tuple[str, str]]) -> list[Leak]:
    """For each eval (id, text), the longest word n-gram shared with any train (id, text); longest first."""
    vocab: dict[str, int] = {}
    automaton = _SuffixAutomaton()
    tokens: list[str] = []
    starts: list[int] = []
    separator = -1
    for _, text in eval_records:
        starts.append(len(tokens))
        for word in norm_words(text):
            automaton.extend(vocab.setdefault(word, len(vocab)), len(tokens))
            tokens.append(word)
        # A fresh separator after each record: no match can run across two records.
        automaton.extend(separator, len(tokens))
        tokens.append("")
        separator -= 1
    best: dict[int, tuple[int, str, int]] = {}  # eval index → (length, train id, end position)
    for train_id, text in train_records:
        state, matched = 0, 0
        for word in norm_words(text):
            token = vocab.get(word)
            while state and (token is None or token not in automaton.next[state]):
                state = automaton.link[state]
                matched = automaton.length[state]
            if token is not None and token in automaton.next[state]:
                state = automaton.next[state][token]
                matched += 1
            else:
                state, matched = 0, 0
                continue
            end = automaton.end[state]
            index = bisect.bisect_right(starts, end) - 1
            if matched > best.get(index, (0, "", 0))[0]:
                best[index] = (matched, train_id, end)
    leaks = []
    for index, (length, train_id, end) in best.items():
        leaks.append(Leak(eval_records[index][0], train_id, length, " ".join(tokens[end - length + 1: end + 1])))
    leaks.sort(key=lambda leak: (-leak.length, leak.eval_id))
    return leaks
