"""Which two answers to show next: votes are spread over competitor pairs first, then over questions.

Among every (question, pair) the filters allow, the next matchup is the pair with the fewest votes so far and,
within it, the question that pair was compared on least (then the question least voted overall); ties are broken
at random, and so are the sides. Pairs whose two answers are the same text are never shown."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from dataclasses import dataclass
from itertools import combinations

from personaforge.arena.competitors import Pool, Question


@dataclass(frozen=True)
class Matchup:
    id: str
    eval_set: str
    question: Question
    left: str   # competitor keys
    right: str
    left_text: str
    right_text: str

    def public(self) -> dict:
        """What the page may show before the vote: no names."""
        return {"matchup": self.id, "persona": self.question.persona, "question": self.question.text,
                "question_id": self.question.id, "left": self.left_text, "right": self.right_text}

    def vote(self, choice: str) -> dict:
        return {"eval_set": self.eval_set, "persona": self.question.persona, "question_id": self.question.id,
                "left": self.left, "right": self.right, "vote": choice}


def pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


def next_matchup(pool: Pool, votes: list[dict], persona: str = "", first: str = "", second: str = "",
                 rng: random.Random | None = None) -> Matchup | None:
    """The next matchup, or None when the filters leave nothing to compare. ``first``/``second`` pin competitors."""
    rng = rng or random.Random(secrets.randbits(64))
    by_pair = Counter(pair(v["left"], v["right"]) for v in votes)
    by_pair_question = Counter((pair(v["left"], v["right"]), v["question_id"]) for v in votes)
    by_question = Counter(v["question_id"] for v in votes)
    best, best_score = None, None
    for eval_set in pool.sets.values():
        keys = sorted(eval_set.competitors)
        for a, b in combinations(keys, 2):
            if first and first not in (a, b) or second and second not in (a, b) or (first and first == second):
                continue
            ca, cb = eval_set.competitors[a], eval_set.competitors[b]
            for qid, question in eval_set.questions.items():
                if persona and question.persona != persona:
                    continue
                ta, tb = ca.answers.get(qid), cb.answers.get(qid)
                if not ta or not tb or ta == tb:
                    continue
                score = (by_pair[(a, b)], by_pair_question[((a, b), qid)], by_question[qid], rng.random())
                if best_score is None or score < best_score:
                    best, best_score = (eval_set.fingerprint, question, a, b, ta, tb), score
    if best is None:
        return None
    fingerprint, question, a, b, ta, tb = best
    if rng.random() < 0.5:
        a, b, ta, tb = b, a, tb, ta
    return Matchup(secrets.token_urlsafe(12), fingerprint, question, a, b, ta, tb)
