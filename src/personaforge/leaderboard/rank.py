"""The board: entries grouped per eval set (same eval records, same decoding), ranked by one metric, the top two
tested against each other, base and instruct models of one family paired, fine-tuned runs set against their untuned
baseline. Pure data; the renderers (markdown, tables, plots, html_report) read it and never each other.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from personaforge.errors import PersonaForgeError
from personaforge.evaluate.decoding import describe, effective_decoding
from personaforge.evaluate.stats import ALPHA, paired_bootstrap  # ALPHA: the 95% of the eval intervals
from personaforge.fileio import display_path
from personaforge.leaderboard.collect import BASELINE_SUFFIX, Entry
from personaforge.leaderboard.showcase import Showcase, build_showcase

DEFAULT_METRIC = "rouge1"
# Shown next to the ranking metric in the tables (when present); every metric goes into csv/json.
# The fine-tune against its baseline is tested on these whatever ranks the board: the original's headline metric,
# closeness of meaning to the person's real answer, and whether each persona sounds like itself.
BASELINE_TEST_METRICS = ("rouge1", "semantic_similarity", "attribution", "cross_attribution")
KEY_METRICS = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "semantic_similarity", "cross_attribution")
# 1.0 is ideal for a length ratio, so "higher is better" ranking and a one-sided test would mislead.
NOT_RANKABLE = {"length_ratio": "1.0 is ideal, not higher"}


# ------------------------------------------------------------------------------------ paired test
@dataclass(frozen=True)
class Paired:
    """A paired bootstrap of A against B on their shared samples (one-sided: is A better?)."""

    delta: float
    ci: tuple[float, float]
    p_value: float
    samples: int
    resamples: int
    lower_bound: float  # one-sided 95% lower bound of delta: the interval of the one-sided test

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA


def _keyed(records: Sequence[dict[str, Any]]) -> Iterator[tuple[tuple[str, int], dict[str, Any]]]:
    # (id, occurrence): a repeated id still pairs the k-th with the k-th instead of silently dropping one.
    seen: dict[str, int] = {}
    for record in records:
        key = str(record.get("id"))
        seen[key] = seen.get(key, 0) + 1
        yield (key, seen[key]), record


def paired_test(a: Entry, b: Entry, metric: str) -> Paired | str:
    """Paired bootstrap of ``metric`` for A vs B, samples matched by id; a reason string when impossible."""
    for entry in (a, b):
        if entry.predictions is None:
            return f"no predictions.jsonl in {display_path(entry.path)}"
    other = dict(_keyed(b.predictions))
    pairs = [(record, other[key]) for key, record in _keyed(a.predictions) if key in other]
    if not pairs:
        return f"{a.label} and {b.label} share no sample ids"
    if all(metric in (record.get("scores") or {}) for pair in pairs for record in pair):
        values_a = [float(ra["scores"][metric]) for ra, _ in pairs]
        values_b = [float(rb["scores"][metric]) for _, rb in pairs]
        result = paired_bootstrap(values_a, values_b)
    else:
        from personaforge.evaluate.metrics import CORPUS_METRICS, corpus_statistics

        if metric not in CORPUS_METRICS:
            return f"no per-sample {metric} in predictions.jsonl"
        # A corpus metric (BLEU, chrF, distinct-n) is recomputed on each resample, not averaged.
        expected = [str(ra.get("expected", "")) for ra, _ in pairs]
        stat_a = corpus_statistics([str(ra.get("prediction", "")) for ra, _ in pairs], expected)[metric]
        stat_b = corpus_statistics([str(rb.get("prediction", "")) for _, rb in pairs], expected)[metric]
        result = paired_bootstrap(stat_a, stat_b)
    lo, hi = result["ci"]
    return Paired(float(result["delta"]), (float(lo), float(hi)), float(result["p_value"]), len(pairs),
                  int(result["n"]), float(result["lower_bound"]))


def format_p(p: float) -> str:
    return f"p={p:.3f}"


# ----------------------------------------------------------------------------------- the leaderboard
@dataclass
class Row:
    rank: int | None          # None: the entry has no value for the metric
    entry: Entry
    value: float | None
    ci: tuple[float, float] | None


@dataclass
class Verdict:
    """Is the top entry of an eval set significantly better than the second?"""

    metric: str
    winner: str
    runner_up: str
    test: Paired | None
    reason: str | None = None  # why no test was run

    @property
    def text(self) -> str:
        if self.test is None:
            return f"{self.winner} ranks above {self.runner_up}; no significance test: {self.reason}"
        t = self.test
        word = "significantly better" if t.significant else "not significantly better"
        return (f"winner {self.winner} is {word} than {self.runner_up} on {self.metric} ({format_p(t.p_value)};"
                f" Δ {t.delta:+.3f}, at least {t.lower_bound:+.3f} with one-sided 95% confidence; two-sided 95% CI"
                f" [{t.ci[0]:+.3f}, {t.ci[1]:+.3f}]; paired bootstrap, {t.resamples} resamples of {t.samples}"
                " shared samples)")


@dataclass
class EvalSet:
    index: int               # 1-based: the set with most entries first
    fingerprint: str | None
    split: str
    samples: int | None
    rows: list[Row]
    verdict: Verdict | None
    note: str | None = None  # e.g. why there is no verdict
    decoding: str = "decoding unknown"
    showcase: Showcase | None = None  # answers side by side: the best fine-tuned run, its baseline, the real answer

    @property
    def title(self) -> str:
        samples = f"{self.samples} samples" if self.samples is not None else "samples unknown"
        fingerprint = self.fingerprint[:12] if self.fingerprint else "unknown (ranked alone)"
        return f"Eval set {self.index}: split {self.split}, {samples}, fingerprint {fingerprint}; {self.decoding}"


@dataclass
class FamilyComparison:
    """Best fine-tuned base model vs best fine-tuned instruct model of one family and size, on one eval set."""

    eval_set: int
    family: str
    size: str | None
    base: str
    base_value: float
    instruct: str
    instruct_value: float

    @property
    def better(self) -> str:
        if self.instruct_value == self.base_value:
            return "tie"
        return "instruct" if self.instruct_value > self.base_value else "base"

    @property
    def pct(self) -> float | None:
        """How much better the better one is, in % of the other (the original pipeline's "instruct +10%")."""
        low = min(self.base_value, self.instruct_value)
        return None if low == 0 else abs(self.instruct_value - self.base_value) / low * 100

    @property
    def text(self) -> str:
        if self.better == "tie":
            return "tie"
        return f"{self.better} +{self.pct:.1f}%" if self.pct is not None else f"{self.better} better (other is 0)"


@dataclass
class BaselineDelta:
    eval_set: int
    run: str
    baseline: str
    value: float
    baseline_value: float
    intervals_overlap: bool | None
    test: Paired | str  # a Paired, or why no test was run
    metric: str = ""
    searched: float | None = None  # the person's own best-fitting training answer on this metric, for scale

    @property
    def delta(self) -> float:
        return self.value - self.baseline_value

    @property
    def delta_pct(self) -> float | None:
        return None if self.baseline_value == 0 else self.delta / self.baseline_value * 100


@dataclass
class Board:
    metric: str
    definition: str | None
    eval_sets: list[EvalSet]
    families: list[FamilyComparison]
    baseline_deltas: list[BaselineDelta]
    notes: list[str]
    columns: list[str]  # the key metrics present, the ranking metric first
    # Every fine-tuned run against its baseline on each key metric (and attribution), the ranking metric first:
    # whether a fine-tune helped should not depend on which metric ranks the board.
    baseline_tests: list[BaselineDelta] = field(default_factory=list)
    arena: Any = None  # arena.Ratings from the runs folder's votes (keyed by eval folder), when anyone voted
    arena_root: Path | None = None

    def arena_rating(self, entry: Entry) -> Any:
        """The entry's arena rating (arena.ratings.Rating), or None."""
        if self.arena is None:
            return None
        try:
            return self.arena.get(entry.path.resolve().relative_to(self.arena_root.resolve()).as_posix())
        except ValueError:
            return None

    @property
    def all_metrics(self) -> list[str]:
        """Every numeric metric of any entry, in first-seen (metrics.json) order."""
        seen: dict[str, None] = {}
        for row in self.rows():
            seen.update(dict.fromkeys(row.entry.metrics))
        return list(seen)

    def rows(self) -> Iterator[Row]:
        for eval_set in self.eval_sets:
            yield from eval_set.rows


def available_metrics(entries: Sequence[Entry]) -> list[str]:
    seen: dict[str, None] = {}
    for entry in entries:
        seen.update(dict.fromkeys(entry.metrics))
    return [name for name in seen if name not in NOT_RANKABLE]


def _check_metric(entries: Sequence[Entry], metric: str) -> None:
    available = available_metrics(entries)
    if metric in NOT_RANKABLE:
        raise PersonaForgeError(f"--metric {metric} cannot rank runs ({NOT_RANKABLE[metric]}); use one of:"
                                f" {', '.join(available)}")
    if metric not in available:
        raise PersonaForgeError(f"--metric {metric}: unknown metric; available: {', '.join(available)}")


def _rank(entries: Sequence[Entry], metric: str) -> list[Row]:
    scored = sorted((e for e in entries if metric in e.metrics), key=lambda e: (-e.metrics[metric], e.label))
    rows: list[Row] = []
    for position, entry in enumerate(scored, 1):
        value = entry.metrics[metric]
        tied = rows and rows[-1].value == value
        rows.append(Row(rows[-1].rank if tied else position, entry, value, entry.ci.get(metric)))
    unscored = sorted((e for e in entries if metric not in e.metrics), key=lambda e: e.label)
    return rows + [Row(None, entry, None, None) for entry in unscored]


def _verdict(rows: list[Row], metric: str) -> tuple[Verdict | None, str | None]:
    ranked = [row for row in rows if row.rank is not None]
    if len(ranked) < 2:
        return None, "only one run on this eval set: nothing to compare"
    first, second = ranked[0].entry, ranked[1].entry
    test = paired_test(first, second, metric)
    if isinstance(test, str):
        return Verdict(metric, first.label, second.label, None, test), None
    return Verdict(metric, first.label, second.label, test), None


def _families(eval_set: EvalSet) -> list[FamilyComparison]:
    best: dict[tuple[str, str | None, bool], Row] = {}
    for row in eval_set.rows:
        entry = row.entry
        # Untuned baselines answer a different question (how good is the raw model), so they are left out.
        if row.value is None or entry.baseline or entry.family is None or entry.instruct is None:
            continue
        key = (entry.family, entry.size, entry.instruct)
        if key not in best or row.value > best[key].value:
            best[key] = row
    comparisons = []
    for (family, size, instruct), row in best.items():
        other = best.get((family, size, not instruct))
        if instruct and other is not None:
            comparisons.append(FamilyComparison(eval_set.index, family, size, other.entry.label, other.value,
                                                row.entry.label, row.value))
    return sorted(comparisons, key=lambda c: (c.family, c.size or ""))


def _baseline_deltas(eval_set: EvalSet, metric: str) -> list[BaselineDelta]:
    by_eval = {(row.entry.run_dir.resolve(), row.entry.eval_name): row for row in eval_set.rows}
    deltas = []
    for row in eval_set.rows:
        entry = row.entry
        value = entry.metrics.get(metric)
        if entry.baseline or value is None:
            continue
        base_row = by_eval.get((entry.run_dir.resolve(), entry.eval_name + BASELINE_SUFFIX))
        base_value = base_row.entry.metrics.get(metric) if base_row else None
        if base_value is None:
            continue
        ci, base_ci = entry.ci.get(metric), base_row.entry.ci.get(metric)
        overlap = None
        if ci and base_ci:
            overlap = ci[0] <= base_ci[1] and base_ci[0] <= ci[1]
        deltas.append(BaselineDelta(eval_set.index, entry.label, base_row.entry.label, value, base_value, overlap,
                                    paired_test(entry, base_row.entry, metric), metric, entry.retrieval.get(metric)))
    return deltas


def build_board(entries: Sequence[Entry], metric: str = DEFAULT_METRIC) -> Board:
    """Rank entries by ``metric`` within each eval set (same eval fingerprint and decoding) and compare them."""
    if not entries:
        raise PersonaForgeError("no evaluated runs; run persona eval RUN first")
    _check_metric(entries, metric)
    notes = []
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        if entry.fingerprint is None:
            notes.append(f"{display_path(entry.path / 'metrics.json')} has no meta.eval_fingerprint: ranked alone;"
                         " re-run persona eval to compare it")
        # Greedy answers cut short, or sampled ones, are a different measurement of the same model.
        decoding = json.dumps(effective_decoding(entry.generation), sort_keys=True) if entry.generation else ""
        groups.setdefault((entry.fingerprint or f"unknown:{entry.path}", decoding), []).append(entry)

    eval_sets = []
    for (fingerprint, _), members in groups.items():
        rows = _rank(members, metric)
        eval_sets.append(EvalSet(0, None if fingerprint.startswith("unknown:") else fingerprint,
                                 members[0].split, members[0].samples, rows, None,
                                 decoding=describe(members[0].generation)))
        for row in rows:
            if row.rank is None:
                notes.append(f"{row.entry.label} has no {metric}: listed unranked")
    # The largest comparison comes first, then the set holding the best value; numbering follows.
    eval_sets.sort(key=lambda s: (-len(s.rows), -max((r.value for r in s.rows if r.value is not None),
                                                     default=float("-inf"))))
    checked = [metric] + [m for m in BASELINE_TEST_METRICS if m != metric and any(m in e.metrics for e in entries)]
    families, tests = [], []
    for index, eval_set in enumerate(eval_sets, 1):
        eval_set.index = index
        eval_set.verdict, eval_set.note = _verdict(eval_set.rows, metric)
        eval_set.showcase = build_showcase([row.entry for row in eval_set.rows], metric)
        families += _families(eval_set)
        tests += [delta for name in checked for delta in _baseline_deltas(eval_set, name)]
    deltas = [test for test in tests if test.metric == metric]  # the ranking metric's, tested once
    if len(eval_sets) > 1:
        notes.insert(0, f"{len(eval_sets)} eval sets: ranked separately (runs scored on different eval records, or"
                        " decoded with different settings, are never ranked against each other)")
    definition = next((e.definitions[metric] for e in entries if metric in e.definitions), None)
    present = [m for m in KEY_METRICS if m != metric and any(m in e.metrics for e in entries)]
    return Board(metric, definition, eval_sets, families, deltas, notes, [metric, *present], tests)
