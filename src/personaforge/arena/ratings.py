"""Ratings from votes: Bradley–Terry strengths fitted by choix, on an Elo-like scale, with bootstrap intervals.

- A decisive vote counts as two wins for the winner; a tie or "both bad" as one win each way (half a win each,
  as LMArena counts ties). choix's ILSR fit gets a little regularisation (``ALPHA``), so a competitor that only
  ever won still gets a finite rating.
- Ratings are 1000 + 400·log10-odds, centred on the mean competitor: a 400-point gap means 10:1 odds.
- Intervals: the 2.5th and 97.5th percentiles over ``RESAMPLES`` fits on votes resampled with replacement.
- Side bias: the share of decisive votes won by the left answer (0.5 = none), with a Wilson 95% interval.
- Against the real answer: for each model, the share of its votes against the reference where the model was
  preferred or tied (tie or both bad), with a Wilson 95% interval.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from personaforge.arena.competitors import REFERENCE

ALPHA = 0.1
RESAMPLES = 300
SCALE = 400 / math.log(10)
Z95 = 1.959964


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    if n <= 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Rating:
    key: str
    rating: float
    ci: tuple[float, float]
    votes: int
    wins: int
    losses: int
    ties: int
    vs_reference: int = 0            # votes against the real answer
    reference_share: float | None = None  # preferred or tied, of those
    reference_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return {"key": self.key, "rating": round(self.rating, 1), "ci": [round(x, 1) for x in self.ci],
                "votes": self.votes, "wins": self.wins, "losses": self.losses, "ties": self.ties,
                "vs_reference": self.vs_reference, "reference_share": self.reference_share,
                "reference_ci": list(self.reference_ci) if self.reference_ci else None}


@dataclass
class Ratings:
    votes: int
    ratings: dict[str, Rating] = field(default_factory=dict)
    left_share: float | None = None    # of decisive votes
    left_ci: tuple[float, float] | None = None
    decisive: int = 0

    def get(self, key: str) -> Rating | None:
        return self.ratings.get(key)

    def ranked(self) -> list[Rating]:
        return sorted(self.ratings.values(), key=lambda r: -r.rating)

    def to_dict(self) -> dict:
        return {"votes": self.votes, "method": "Bradley-Terry (choix ILSR, alpha %g), %d bootstrap resamples"
                % (ALPHA, RESAMPLES), "scale": "1000 + 400*log10 odds, centred on the mean competitor",
                "side_bias": {"left_share": self.left_share, "ci": list(self.left_ci) if self.left_ci else None,
                              "decisive_votes": self.decisive},
                "ratings": [r.to_dict() for r in self.ranked()]}


def _comparisons(votes: list[dict], index: dict[str, int]) -> list[tuple[int, int]]:
    data = []
    for v in votes:
        left, right = index[v["left"]], index[v["right"]]
        if v["vote"] == "left":
            data += [(left, right)] * 2
        elif v["vote"] == "right":
            data += [(right, left)] * 2
        else:
            data += [(left, right), (right, left)]
    return data


def _fit(n: int, data: list[tuple[int, int]]) -> np.ndarray:
    import choix

    params = choix.ilsr_pairwise(n, data, alpha=ALPHA) if data else np.zeros(n)
    params = params - params.mean()
    return 1000 + SCALE * params


def rate(votes: list[dict], seed: int = 0, resamples: int = RESAMPLES) -> Ratings:
    keys = sorted({v["left"] for v in votes} | {v["right"] for v in votes})
    result = Ratings(len(votes))
    if not keys:
        return result
    index = {k: i for i, k in enumerate(keys)}
    point = _fit(len(keys), _comparisons(votes, index))
    rng = np.random.default_rng(seed)
    samples = np.empty((resamples, len(keys)))
    for r in range(resamples):
        picked = [votes[i] for i in rng.integers(0, len(votes), len(votes))]
        samples[r] = _fit(len(keys), _comparisons(picked, index))
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    counts: dict[str, Counter] = {k: Counter() for k in keys}
    for v in votes:
        for side, other in (("left", "right"), ("right", "left")):
            key = v[side]
            outcome = "ties" if v["vote"] in ("tie", "both_bad") else ("wins" if v["vote"] == side else "losses")
            counts[key][outcome] += 1
            if v[other] == REFERENCE and key != REFERENCE:
                counts[key]["vs_reference"] += 1
                counts[key]["held"] += outcome != "losses"
    for key, i in index.items():
        c = counts[key]
        n_ref = c["vs_reference"]
        share = c["held"] / n_ref if n_ref else None
        result.ratings[key] = Rating(key, float(point[i]), (float(low[i]), float(high[i])),
                                     c["wins"] + c["losses"] + c["ties"], c["wins"], c["losses"], c["ties"],
                                     n_ref, share, wilson(c["held"], n_ref))
    decisive = [v for v in votes if v["vote"] in ("left", "right")]
    result.decisive = len(decisive)
    if decisive:
        left = sum(v["vote"] == "left" for v in decisive)
        result.left_share = left / len(decisive)
        result.left_ci = wilson(left, len(decisive))
    return result


# ------------------------------------------------------------------------------ for the leaderboard
ARENA_HEADER = ["arena (95% CI)", "arena votes", "≥ real answer (95% CI)"]
ARENA_CSV = ["arena_rating", "arena_ci_low", "arena_ci_high", "arena_votes", "arena_vs_real_votes",
             "arena_preferred_or_tied_with_real", "arena_real_ci_low", "arena_real_ci_high"]


def arena_cells(rating: Rating | None) -> list[str]:
    if rating is None:
        return ["—", "0", "—"]
    real = "—" if rating.reference_share is None else (
        f"{rating.reference_share:.0%} [{rating.reference_ci[0]:.0%}, {rating.reference_ci[1]:.0%}]"
        f" of {rating.vs_reference}")
    return [f"{rating.rating:.0f} [{rating.ci[0]:.0f}, {rating.ci[1]:.0f}]", str(rating.votes), real]


def arena_csv(rating: Rating | None) -> list[object]:
    if rating is None:
        return ["", "", "", 0, 0, "", "", ""]
    real_ci = rating.reference_ci or ("", "")
    return [round(rating.rating, 1), round(rating.ci[0], 1), round(rating.ci[1], 1), rating.votes,
            rating.vs_reference, "" if rating.reference_share is None else rating.reference_share, *real_ci]


def arena_summary(ratings: Ratings, where: str) -> str:
    """One line for the leaderboard's notes: how many votes, the side bias, the real answer's own rating."""
    text = f"arena: {ratings.votes} blind votes in {where}; ratings are Bradley-Terry (1000 = the mean competitor)"
    if ratings.left_share is not None:
        text += (f"; side bias: the left answer won {ratings.left_share:.0%} of {ratings.decisive} decisive votes"
                 f" [{ratings.left_ci[0]:.0%}, {ratings.left_ci[1]:.0%}]")
    real = ratings.get(REFERENCE)
    if real is not None:
        text += f"; the real answer: {real.rating:.0f} [{real.ci[0]:.0f}, {real.ci[1]:.0f}] over {real.votes} votes"
    return text


def load_ratings(runs_dir) -> tuple[Ratings, str] | None:
    """The ratings from ``runs_dir``'s votes file and its display path, or None when nobody voted yet."""
    from personaforge.arena.votes import VOTES_FILE, VoteLog
    from personaforge.fileio import display_path

    log = VoteLog(runs_dir / VOTES_FILE)
    votes = log.votes()
    return (rate(votes), display_path(log.path)) if votes else None
