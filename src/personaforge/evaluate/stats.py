"""Seeded bootstrap intervals and paired bootstrap tests over one eval set.

Two kinds of metric are resampled:

* a *mean* metric (ROUGE, semantic similarity, ...) is a list of per-sample values; a resample is the mean
  of the values at the resampled indices;
* a *corpus* metric (BLEU, chrF, distinct-n) is not a mean of per-sample values, so a resample recomputes
  the metric on the resampled samples: :class:`CorpusStatistic` wraps "indices in, corpus value out".

Every function draws its indices from :func:`resample_indices` with the same ``(size, n, seed)``, so all
metrics of one eval set are resampled identically, and both runs of a paired test see the same resamples
(that is what makes the test paired).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 1000
SEED = 0
ALPHA = 0.05


@dataclass(frozen=True)
class CorpusStatistic:
    """A corpus-level metric over ``size`` samples that can be recomputed on any multiset of them.

    ``compute`` takes an integer array of sample indices (repeats allowed) and returns the metric of that
    resampled corpus; ``compute(np.arange(size))`` must be the metric itself.

    Sums of per-sample statistics (BLEU, chrF) resample well. A statistic that repeated samples bias
    (distinct-n: a repeated answer adds n-grams but never new ones) should be linearised by its builder
    instead, so that ``compute`` is a mean of per-sample influence values (see ``metrics._distinct``).
    """

    size: int
    compute: Callable[[np.ndarray], float]

    @classmethod
    def from_function(
        cls,
        predictions: Sequence[str],
        references: Sequence[str],
        corpus_fn: Callable[[list[str], list[str]], float],
    ) -> CorpusStatistic:
        """Wrap any ``corpus_fn(predictions, references) -> float``; it is called once per resample."""
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        preds, refs = list(predictions), list(references)

        def compute(indices: np.ndarray) -> float:
            return float(corpus_fn([preds[i] for i in indices], [refs[i] for i in indices]))

        return cls(len(preds), compute)

    def value(self) -> float:
        """The metric on the whole corpus (no resampling)."""
        return float(self.compute(np.arange(self.size)))


Metric = Sequence[float] | np.ndarray | CorpusStatistic


def resample_indices(size: int, n: int = N_RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``n`` bootstrap resamples of ``range(size)``, shape (n, size); the same for the same arguments."""
    if size < 1:
        raise ValueError("cannot bootstrap an empty eval set")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return np.random.default_rng(seed).integers(0, size, size=(n, size))


def _size(metric: Metric) -> int:
    return metric.size if isinstance(metric, CorpusStatistic) else len(metric)


def _point_and_resamples(metric: Metric, indices: np.ndarray) -> tuple[float, np.ndarray]:
    """The metric on the full set and on each resample."""
    if isinstance(metric, CorpusStatistic):
        return metric.value(), np.array([metric.compute(row) for row in indices], dtype=float)
    values = np.asarray(metric, dtype=float)
    return float(values.mean()), values[indices].mean(axis=1)


def _percentiles(samples: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    metric: Metric, *, n: int = N_RESAMPLES, seed: int = SEED, alpha: float = ALPHA
) -> tuple[float, float]:
    """Percentile bootstrap interval (``1 - alpha`` coverage) of a mean or corpus metric.

    ``metric`` is a sequence of per-sample values (the metric is their mean) or a :class:`CorpusStatistic`.
    Reproducible: the same metric, ``n`` and ``seed`` give the same interval.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    indices = resample_indices(_size(metric), n, seed)
    _, resampled = _point_and_resamples(metric, indices)
    return _percentiles(resampled, alpha)


def paired_bootstrap(
    a: Metric, b: Metric, *, n: int = N_RESAMPLES, seed: int = SEED, alpha: float = ALPHA
) -> dict[str, float | int | tuple[float, float]]:
    """Is run A better than run B on the same eval set? (higher = better; swap the arguments otherwise)

    Both runs are scored on the same resampled sample indices. Returns

    * ``delta``: metric(A) - metric(B) on the full eval set;
    * ``ci``: percentile interval of the resampled deltas (two-sided);
    * ``lower_bound``: the one-sided ``1 - alpha`` lower bound of the delta (the ``alpha`` percentile of the
      resampled deltas), the interval that matches the one-sided test: it is above 0 when ``p_value`` is below
      ``alpha`` (up to the +1 below), where the two-sided ``ci`` can still reach below 0;
    * ``p_value``: one-sided, ``(1 + #{resamples where A <= B}) / (1 + n)``. The +1 counts the observed
      data as one more resample, so the p-value is never 0 with finitely many resamples (the smallest
      possible is ``1 / (n + 1)``, about 0.001 for n = 1000), and ties count against A, so identical runs
      get p = 1;
    * ``n``: the number of resamples.

    This is the paired bootstrap of Koehn (2004): the share of resampled eval sets on which A does not
    beat B.
    """
    size = _size(a)
    if _size(b) != size:
        raise ValueError(f"paired runs must be scored on the same samples: {size} vs {_size(b)}")
    indices = resample_indices(size, n, seed)
    point_a, resampled_a = _point_and_resamples(a, indices)
    point_b, resampled_b = _point_and_resamples(b, indices)
    deltas = resampled_a - resampled_b
    not_better = int(np.count_nonzero(deltas <= 0))
    return {
        "delta": point_a - point_b,
        "p_value": (1 + not_better) / (1 + n),
        "ci": _percentiles(deltas, alpha),
        "lower_bound": _percentiles(deltas, 2 * alpha)[0],
        "n": n,
    }
