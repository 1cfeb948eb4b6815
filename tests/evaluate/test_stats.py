"""Bootstrap intervals are reproducible; the paired bootstrap finds planted differences and not null ones."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from personaforge.evaluate.metrics import corpus_statistics
from personaforge.evaluate.stats import CorpusStatistic, bootstrap_ci, paired_bootstrap, resample_indices

WORDS = "the lamp turns every ten seconds and i count each one when fog rolls in from west".split()


def _sentences(rng: np.random.Generator, count: int) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(6, 14)))) for _ in range(count)]


def _perturb(rng: np.random.Generator, text: str, rate: float) -> str:
    """Replace a share of the words: a worse system at a higher rate."""
    return " ".join(word if rng.random() > rate else str(rng.choice(["x", "y", "z"])) for word in text.split())


def _bleu(predictions: list[str], references: list[str]) -> float:
    return sacrebleu.corpus_bleu(predictions, [references], tokenize="13a", smooth_method="none").score / 100


def test_seeded_intervals_are_reproducible_and_seed_dependent():
    values = np.random.default_rng(1).random(80)
    first = bootstrap_ci(values, n=1000, seed=0)
    assert first == bootstrap_ci(list(values), n=1000, seed=0)
    assert first != bootstrap_ci(values, n=1000, seed=1)
    assert first[0] < values.mean() < first[1]
    # 95% percentile interval of a mean is about mean ± 1.96 standard errors.
    half_width = 1.96 * values.std() / np.sqrt(len(values))
    assert (first[1] - first[0]) / 2 == pytest.approx(half_width, rel=0.15)

    rng = np.random.default_rng(2)
    refs = _sentences(rng, 40)
    preds = [_perturb(rng, r, 0.3) for r in refs]
    bleu = corpus_statistics(preds, refs)["bleu"]
    assert bootstrap_ci(bleu, seed=3) == bootstrap_ci(corpus_statistics(preds, refs)["bleu"], seed=3)
    assert np.array_equal(resample_indices(40, 5, 7), resample_indices(40, 5, 7))


def test_fast_corpus_bleu_resamples_equal_recomputing_with_sacrebleu():
    rng = np.random.default_rng(4)
    refs = _sentences(rng, 25)
    preds = [_perturb(rng, r, 0.3) for r in refs]
    slow = CorpusStatistic.from_function(preds, refs, _bleu)
    fast = corpus_statistics(preds, refs)["bleu"]
    assert fast.value() == pytest.approx(slow.value(), abs=1e-12)
    assert bootstrap_ci(fast, n=100) == pytest.approx(bootstrap_ci(slow, n=100), abs=1e-12)


def _bound_agrees_with_test(result: dict) -> bool:
    """The one-sided bound is above 0 exactly when the one-sided test says significant (5% level)."""
    lo, hi = result["ci"]
    return lo <= result["lower_bound"] <= hi and (result["lower_bound"] > 0) == (result["p_value"] < 0.05)


def test_paired_bootstrap_finds_a_planted_difference_and_no_null_one():
    found, false_alarms, consistent = 0, 0, 0
    for trial in range(40):
        rng = np.random.default_rng(100 + trial)
        base = rng.random(60)
        better = base + 0.05 + rng.normal(0, 0.05, 60)  # a real, per-sample-noisy improvement
        planted = paired_bootstrap(better, base, seed=trial)
        found += planted["p_value"] < 0.05
        # Null: two runs from one distribution, each pair swapped at random.
        a, b = rng.random(60), rng.random(60)
        swap = rng.random(60) < 0.5
        a, b = np.where(swap, b, a), np.where(swap, a, b)
        null = paired_bootstrap(a, b, seed=trial)
        false_alarms += null["p_value"] < 0.05
        consistent += _bound_agrees_with_test(planted) + _bound_agrees_with_test(null)
    assert found == 40
    assert false_alarms <= 6  # expected 2 of 40 at a 5% level; 7 or more has probability ~0.001
    assert consistent == 80

    result = paired_bootstrap(base + 0.05 + rng.normal(0, 0.05, 60), base)
    assert result["p_value"] == pytest.approx(1 / 1001)  # A wins every resample: the +1 correction's floor
    assert result["ci"][0] > 0 and result["n"] == 1000



def test_a_gain_significant_one_sided_has_a_positive_one_sided_bound():
    # A small gain whose one-sided p falls between 0.025 and 0.05: significant one-sided, while the two-sided 95%
    # interval still reaches below 0. The one-sided bound is the one that agrees with the test.
    rng = np.random.default_rng(2)
    base = rng.random(80)
    result = paired_bootstrap(base + 0.02 + rng.normal(0, 0.1, 80), base)
    assert 0.025 < result["p_value"] < 0.05
    assert result["ci"][0] < 0 < result["lower_bound"] < result["delta"]

def test_identical_runs_give_p_one_and_zero_delta():
    scores = np.random.default_rng(5).random(50)
    result = paired_bootstrap(scores, scores.copy())
    assert result["delta"] == 0.0 and result["ci"] == (0.0, 0.0)
    assert result["p_value"] == 1.0


def test_paired_bootstrap_on_a_corpus_metric():
    rng = np.random.default_rng(6)
    refs = _sentences(rng, 50)
    good = corpus_statistics([_perturb(rng, r, 0.1) for r in refs], refs)["bleu"]
    bad = corpus_statistics([_perturb(rng, r, 0.3) for r in refs], refs)["bleu"]
    assert paired_bootstrap(good, bad)["p_value"] < 0.05
    assert paired_bootstrap(bad, good)["p_value"] > 0.95
    assert paired_bootstrap(good, good)["p_value"] == 1.0


def test_mismatched_or_empty_inputs_are_refused():
    with pytest.raises(ValueError, match="same samples"):
        paired_bootstrap([0.1, 0.2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
