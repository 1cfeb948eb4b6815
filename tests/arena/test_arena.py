"""The arena's competitors, pairing, vote file and Bradley–Terry ratings."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from personaforge.arena import REFERENCE, Pool, VoteLog, next_matchup, rate
from personaforge.arena.pairing import pair
from personaforge.arena.ratings import wilson
from personaforge.errors import PersonaForgeError

GOOD, BAD, BASE = "run-good/eval/eval", "run-bad/eval/eval", "run-good/eval/eval-baseline"


def test_pool_finds_every_evaluated_run_its_baseline_and_the_real_answers(runs):
    pool = Pool.load(runs)
    assert list(pool.sets) == ["fp1"]
    competitors = pool.competitors()
    assert sorted(competitors) == sorted([GOOD, BAD, BASE, REFERENCE])  # `latest` is not a second run-good
    assert competitors[BASE].label == "run-good (eval-baseline)" and competitors[GOOD].label == "run-good"
    assert competitors[REFERENCE].answers["q3"] == "At three, <b>before</b> the street wakes."
    assert pool.personas() == ["Ada Bell", "Ben Ortiz"]


def test_a_missing_runs_folder_is_a_user_error(tmp_path):
    with pytest.raises(PersonaForgeError, match="--runs"):
        Pool.load(tmp_path / "nope")


def test_pairing_spreads_votes_over_pairs_and_questions(runs):
    pool = Pool.load(runs)
    rng = random.Random(1)
    votes, sides = [], Counter()
    for _ in range(24):  # 6 pairs x 4 questions
        matchup = next_matchup(pool, votes, rng=rng)
        votes.append(matchup.vote("tie"))
        sides[matchup.left] += 1
    pairs = Counter(pair(v["left"], v["right"]) for v in votes)
    assert len(pairs) == 6 and set(pairs.values()) == {4}
    assert len({(pair(v["left"], v["right"]), v["question_id"]) for v in votes}) == 24  # never the same twice
    assert len(sides) == 4  # everyone gets to be on the left


def test_pairing_honours_the_persona_and_pinned_competitors(runs):
    pool = Pool.load(runs)
    for _ in range(10):
        m = next_matchup(pool, [], persona="Ben Ortiz", first=GOOD, second=REFERENCE)
        assert m.question.persona == "Ben Ortiz" and {m.left, m.right} == {GOOD, REFERENCE}
        public = m.public()
        assert GOOD not in str(public) and "run-good" not in str(public)  # blind until the vote
        assert {public["left"], public["right"]} == {f"good answer to {m.question.id}",
                                                     pool.competitors()[REFERENCE].answers[m.question.id]}
    assert next_matchup(pool, [], persona="Nobody") is None


def test_votes_file_appends_and_tolerates_a_torn_last_line(runs):
    log = VoteLog(runs / "arena" / "votes.jsonl")
    assert log.votes() == []
    vote = {"left": GOOD, "right": BAD, "question_id": "q1", "vote": "left"}
    log.append(vote)
    with open(log.path, "ab") as handle:
        handle.write(b'{"left": "run-good/eval/eval", "right": "run-b')  # a crash mid-write
    assert [v["vote"] for v in log.votes()] == ["left"] and "cut off" in log.warnings[0]
    log.append({**vote, "vote": "tie"})
    assert [v["vote"] for v in log.votes()] == ["left", "tie"]
    assert len(log.warnings) == 1 and "not a vote" in log.warnings[0]  # the torn line, now followed by another
    with pytest.raises(PersonaForgeError):
        log.append({**vote, "vote": "maybe"})


def planted(winner: str, loser: str, n: int, left_first: bool = True) -> list[dict]:
    out = []
    for i in range(n):
        left, right = (winner, loser) if (i % 2 == 0 or not left_first) else (loser, winner)
        out.append({"left": left, "right": right, "question_id": f"q{i % 4 + 1}",
                    "vote": "left" if left == winner else "right"})
    return out


def test_ratings_follow_planted_votes_with_intervals():
    votes = planted(GOOD, BAD, 12) + planted(BAD, BASE, 12) + planted(GOOD, BASE, 6)
    ratings = rate(votes)
    order = [r.key for r in ratings.ranked()]
    assert order == [GOOD, BAD, BASE]
    for r in ratings.ratings.values():
        assert r.ci[0] <= r.rating <= r.ci[1]
    assert ratings.get(GOOD).ci[0] > ratings.get(BASE).ci[1]  # 18-0 against 0-18: clearly apart
    assert ratings.get(GOOD).wins == 18 and ratings.get(GOOD).losses == 0 and ratings.get(BAD).votes == 24
    assert abs(sum(r.rating for r in ratings.ratings.values()) / 3 - 1000) < 1e-6
    assert ratings.left_share == pytest.approx(0.5) and ratings.decisive == 30


def test_side_bias_and_the_share_held_against_the_real_answer():
    votes = [{"left": GOOD, "right": REFERENCE, "question_id": "q1", "vote": v} for v in
             ("left", "tie", "right", "right", "both_bad", "right", "left", "right")]
    ratings = rate(votes)
    good = ratings.get(GOOD)
    assert good.vs_reference == 8 and good.reference_share == pytest.approx(4 / 8)  # 2 wins + 2 ties
    assert good.reference_ci == wilson(4, 8)
    assert ratings.get(REFERENCE).reference_share is None
    assert ratings.left_share == pytest.approx(2 / 6)  # of the 6 decisive votes, the left answer won 2
    assert ratings.get(REFERENCE).rating > good.rating


def test_no_votes_no_ratings():
    ratings = rate([])
    assert ratings.votes == 0 and ratings.ratings == {} and ratings.left_share is None
