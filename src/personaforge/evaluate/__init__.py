"""Evaluation: the original pipeline's metrics and ours, bootstrap intervals, persona attribution.

``metrics`` scores predictions against references, ``stats`` puts seeded bootstrap intervals and paired
tests on those scores, ``attribution`` measures whether answers still sound like the persona they claim.
"""
