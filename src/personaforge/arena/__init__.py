"""The blind arena: people compare two answers to the same eval question and say which is better.

    pool = Pool.load(runs_dir)                 # competitors: every evaluated run, its baseline, the real answers
    log = VoteLog(runs_dir / VOTES_FILE)       # arena/votes.jsonl, append-only, written as votes are cast
    matchup = next_matchup(pool, log.votes())  # the least-compared pair on its least-compared question
    log.append(matchup.vote("left"))           # left | right | tie | both_bad
    ratings = rate(log.votes())                # Bradley–Terry (choix) with bootstrap intervals, side bias

It sits beside evaluation: it reads eval predictions, and the leaderboard reads its ratings.
"""

from personaforge.arena.competitors import REFERENCE, Pool
from personaforge.arena.pairing import Matchup, next_matchup
from personaforge.arena.ratings import Ratings, rate
from personaforge.arena.votes import VOTE_CHOICES, VOTES_FILE, VoteLog

__all__ = ["REFERENCE", "Pool", "Matchup", "next_matchup", "Ratings", "rate", "VOTE_CHOICES", "VOTES_FILE", "VoteLog"]
