"""Collect eval results across runs, rank them per eval set, compare, and render md/csv/json/html/png.

Data flow: ``collect(runs_dir)`` finds every ``<run>/eval/<name>/metrics.json`` → one :class:`Entry` each;
``build_leaderboard(entries, metric)`` groups entries by eval fingerprint and decoding settings (runs scored
on different eval records, or decoded differently, are never ranked against each other), ranks each group,
runs a paired bootstrap between the top two, pairs base and instruct models of one family, and compares
fine-tuned runs with their untuned baseline. The :class:`Leaderboard` renders itself; plots and the HTML
report live in ``report_html``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from personaforge.arena.ratings import ARENA_CSV, ARENA_HEADER, arena_cells, arena_csv, arena_summary, load_ratings
from personaforge.errors import PersonaForgeError
from personaforge.evaluate.decoding import describe, effective_decoding
from personaforge.evaluate.stats import ALPHA, paired_bootstrap  # ALPHA: the 95% of the eval intervals
from personaforge.fileio import atomic_write_bytes, atomic_write_text, display_path, dumps_json
from personaforge.showcase import Showcase, build_showcase, showcase_markdown

DEFAULT_METRIC = "rouge1"
# Shown next to the ranking metric in the tables (when present); every metric goes into csv/json.
KEY_METRICS = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "semantic_similarity")
# 1.0 is ideal for a length ratio, so "higher is better" ranking and a one-sided test would mislead.
NOT_RANKABLE = {"length_ratio": "1.0 is ideal, not higher"}
BASELINE_SUFFIX = "-baseline"
LATEST = "latest"


# ------------------------------------------------------------------------------------- model names
_FAMILIES: tuple[tuple[str, str], ...] = (
    # (regex on the lower-cased model name, family; "{v}" takes the version group)
    (r"smollm[-_ ]?(\d*)", "smollm{v}"),
    (r"llama[-_ ]?(\d+(?:\.\d+)?)?", "llama{v}"),
    (r"mixtral", "mixtral"),
    (r"mistral", "mistral"),
    (r"qwen[-_ ]?(\d+(?:\.\d+)?)?", "qwen{v}"),
    (r"gemma[-_ ]?(\d+)?", "gemma{v}"),
    (r"phi[-_ ]?(\d+(?:\.\d+)?)?", "phi{v}"),
    (r"falcon[-_ ]?(\d+)?", "falcon{v}"),
)
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([mb])(?![a-z0-9])")
_INSTRUCT_TOKENS = {"it", "chat"}


def parse_family(model: str) -> str | None:
    """'meta-llama/Meta-Llama-3.1-8B-Instruct' → 'llama3.1', 'Qwen/Qwen2.5-14B' → 'qwen2.5'; None if unknown."""
    name = model.lower()
    for pattern, family in _FAMILIES:
        matches = list(re.finditer(pattern, name))
        if matches:
            # "meta-llama/Meta-Llama-3-8B": the org name has no version, the model name does.
            versions = [m.group(1) for m in matches if m.groups() and m.group(1)]
            return family.format(v=versions[0] if versions else "")
    return None


def parse_size(model: str) -> str | None:
    """The size the model is called by: 'SmolLM2-135M' → '135M', 'Llama-3-8B' → '8B'; None if absent."""
    match = _SIZE.search(model.lower())
    return f"{match.group(1)}{match.group(2).upper()}" if match else None


def human_size(params: int) -> str:
    """134_515_008 → '135M', 8_030_261_248 → '8B', 1_711_376_384 → '1.7B'."""
    if params >= 1e9:
        return f"{params / 1e9:.1f}".removesuffix(".0") + "B"
    if params >= 1e6:
        return f"{params / 1e6:.0f}M"
    return f"{params / 1e3:.0f}K"


def parse_instruct(model: str) -> bool:
    """Instruct/chat-tuned by its name: '-Instruct', '-it', '-chat'; anything else counts as a base model."""
    tokens = re.split(r"[-_/.: ]+", model.lower())
    return "instruct" in model.lower() or any(token in _INSTRUCT_TOKENS for token in tokens)


# ------------------------------------------------------------------------------------------ reading
def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PersonaForgeError(f"{display_path(path)}: not valid JSON ({exc}); re-run the step that wrote it"
                                " or remove the folder") from None


def _read_model_name(run_dir: Path) -> str | None:
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None  # meta.model is the primary source; config.yaml is only a fallback
    model = config.get("model") if isinstance(config, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    return str(name) if name else None


def _number(value: Any) -> float | None:
    # bool is an int subclass; a True/False is never a metric value.
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass
class Entry:
    """One evaluation of one run: ``<run>/eval/<name>/`` (``name`` is the split or ``<split>-baseline``)."""

    run: str
    eval_name: str
    path: Path                      # the eval folder
    run_dir: Path
    model: str
    family: str | None
    size: str | None
    params: int | None
    instruct: bool | None
    baseline: bool
    tag: str | None
    split: str
    samples: int | None
    fingerprint: str | None
    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    attribution: dict[str, Any]
    definitions: dict[str, str]
    status: str | None
    train: dict[str, Any] = field(default_factory=dict)  # train_metrics.json; empty for baselines
    generation: dict[str, Any] | None = None  # meta.generation: how the answers were decoded

    @property
    def label(self) -> str:
        """How the entry is named everywhere: the run, plus the eval name when it is not the plain split."""
        return self.run if self.eval_name == self.split else f"{self.run} ({self.eval_name})"

    @property
    def kind(self) -> str:
        return "—" if self.instruct is None else ("instruct" if self.instruct else "base")

    @property
    def wall_s(self) -> float | None:
        return _number(self.train.get("wall_s"))

    @cached_property
    def predictions(self) -> list[dict[str, Any]] | None:
        """predictions.jsonl records, or None when the file is missing."""
        path = self.path / "predictions.jsonl"
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise PersonaForgeError(f"{display_path(path)}:{number}: not valid JSON; re-run persona eval"
                                        f" {self.run}") from None
        return records


def _load_entry(metrics_path: Path) -> Entry:
    eval_dir = metrics_path.parent
    run_dir = eval_dir.parent.parent
    data = _read_json(metrics_path)
    if not isinstance(data, dict):
        raise PersonaForgeError(f"{display_path(metrics_path)}: expected a JSON object; re-run persona eval"
                                f" {run_dir.name}")
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    model = str(meta.get("model") or _read_model_name(run_dir) or "unknown")
    params = meta.get("params") if isinstance(meta.get("params"), int) else None
    instruct = meta.get("instruct") if isinstance(meta.get("instruct"), bool) else parse_instruct(model)
    baseline = bool(meta["baseline"]) if isinstance(meta.get("baseline"), bool) \
        else eval_dir.name.endswith(BASELINE_SUFFIX)
    split = str(meta.get("split") or eval_dir.name.removesuffix(BASELINE_SUFFIX))
    # The name is more specific than meta.family (which may name the architecture: SmolLM2 is "llama").
    family = parse_family(model) or (str(meta["family"]).lower() if meta.get("family") else None)
    size = parse_size(model) or (human_size(params) if params else None)
    metrics = {key: number for key, value in data.items() if (number := _number(value)) is not None}
    attribution = data.get("attribution") if isinstance(data.get("attribution"), dict) else {}
    if _number(attribution.get("accuracy")) is not None:
        # Ranked and tested like any metric (--metric attribution): the mean of the per-sample 0/1 scores.
        metrics["attribution"] = float(attribution["accuracy"])
    ci = {}
    for key, bounds in (data.get("ci") or {}).items():
        if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(_number(b) is not None for b in bounds):
            ci[key] = (float(bounds[0]), float(bounds[1]))
    status = _read_json(run_dir / "status.json")
    # An untuned baseline was not trained: the run's training time and losses are not its own.
    train = {} if baseline else (_read_json(run_dir / "train_metrics.json") or {})
    return Entry(
        run=str(meta.get("run") or run_dir.name), eval_name=eval_dir.name, path=eval_dir, run_dir=run_dir,
        model=model, family=family, size=size, params=params, instruct=instruct, baseline=baseline,
        tag=str(meta["tag"]) if meta.get("tag") else None, split=split,
        samples=meta.get("samples") if isinstance(meta.get("samples"), int) else None,
        fingerprint=str(meta["eval_fingerprint"]) if meta.get("eval_fingerprint") else None,
        metrics=metrics, ci=ci, attribution=attribution,
        definitions=data.get("definitions") or {},
        status=status.get("status") if isinstance(status, dict) else None,
        train=train if isinstance(train, dict) else {},
        generation=meta["generation"] if isinstance(meta.get("generation"), dict) else None,
    )


def _metrics_files(runs_dir: Path) -> Iterator[Path]:
    """``<run>/eval/<name>/metrics.json`` under runs_dir, never through a symlink (``latest`` included)."""
    for folder, dirnames, _ in os.walk(runs_dir, followlinks=False):
        here = Path(folder)
        eval_dir = here / "eval"
        if "eval" in dirnames and not eval_dir.is_symlink():
            # A run folder: its evals are all we need; adapter/checkpoints/merged can be large to walk.
            dirnames[:] = []
            for child in sorted(eval_dir.iterdir()):
                if child.is_dir() and not child.is_symlink() and (child / "metrics.json").is_file():
                    yield child / "metrics.json"
            continue
        dirnames[:] = sorted(d for d in dirnames if d != LATEST and not (here / d).is_symlink())


def collect(runs_dir: Path) -> list[Entry]:
    """Every evaluation under runs_dir (searched recursively), in path order."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise PersonaForgeError(f"runs folder {display_path(runs_dir)} not found; pass --runs DIR or train a run"
                                " first (persona train CONFIG)")
    entries = [_load_entry(path) for path in _metrics_files(runs_dir)]
    if not entries:
        raise PersonaForgeError(f"no evaluated runs under {display_path(runs_dir)}; run persona eval RUN first")
    return entries


# ------------------------------------------------------------------------------------ paired test
@dataclass(frozen=True)
class Paired:
    """A paired bootstrap of A against B on their shared samples (one-sided: is A better?)."""

    delta: float
    ci: tuple[float, float]
    p_value: float
    samples: int
    resamples: int

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
                  int(result["n"]))


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
                f" Δ {t.delta:+.3f}, 95% CI [{t.ci[0]:+.3f}, {t.ci[1]:+.3f}]; one-sided paired bootstrap,"
                f" {t.resamples} resamples of {t.samples} shared samples)")


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

    @property
    def delta(self) -> float:
        return self.value - self.baseline_value

    @property
    def delta_pct(self) -> float | None:
        return None if self.baseline_value == 0 else self.delta / self.baseline_value * 100


@dataclass
class Leaderboard:
    metric: str
    definition: str | None
    eval_sets: list[EvalSet]
    families: list[FamilyComparison]
    baseline_deltas: list[BaselineDelta]
    notes: list[str]
    columns: list[str]  # the key metrics present, the ranking metric first
    arena: Any = None  # arena.Ratings from the runs folder's votes (keyed by eval folder), when anyone voted
    arena_root: Path | None = None

    def arena_rating(self, entry: Entry) -> Any:
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

    def to_markdown(self) -> str:
        return _markdown(self)

    def to_csv(self) -> str:
        return _csv(self)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)

    def to_json(self) -> str:
        return dumps_json(self.to_dict())

    def to_html(self) -> str:
        """A self-contained report: the plots are embedded as base64 PNG, so the one file can be moved or mailed."""
        from personaforge.report_html import render_html, render_plots

        return render_html(self, render_plots(self))

    def write_all(self, out_dir: Path) -> list[Path]:
        """leaderboard.md/.csv/.json, report.html and plots/*.png in out_dir; returns the paths written."""
        from personaforge.report_html import PLOT_PATTERN, render_html, render_plots

        out_dir = Path(out_dir)
        if out_dir.exists() and not out_dir.is_dir():
            raise PersonaForgeError(f"--out {display_path(out_dir)} is a file; give a folder")
        # Everything is rendered before the first write, so a failure leaves the old report whole.
        plots = render_plots(self)
        texts = {"leaderboard.md": self.to_markdown(), "leaderboard.csv": self.to_csv(),
                 "leaderboard.json": self.to_json(), "report.html": render_html(self, plots)}
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PersonaForgeError(f"--out {display_path(out_dir)}: cannot create ({exc.strerror}); choose a"
                                    " writable folder") from None
        written = []
        for name, data in plots.items():
            atomic_write_bytes(out_dir / "plots" / name, data)
            written.append(out_dir / "plots" / name)
        # A plot of a run that is gone (removed, or no longer evaluated) would contradict the report.
        if (out_dir / "plots").is_dir():
            for stale in (out_dir / "plots").glob("*.png"):
                if stale.name not in plots and PLOT_PATTERN.fullmatch(stale.name):
                    stale.unlink()
        for name, text in texts.items():
            atomic_write_text(out_dir / name, text)
            written.append(out_dir / name)
        return written


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
        if entry.baseline or row.value is None:
            continue
        base_row = by_eval.get((entry.run_dir.resolve(), entry.eval_name + BASELINE_SUFFIX))
        if base_row is None or base_row.value is None:
            continue
        overlap = None
        if row.ci and base_row.ci:
            overlap = row.ci[0] <= base_row.ci[1] and base_row.ci[0] <= row.ci[1]
        deltas.append(BaselineDelta(eval_set.index, entry.label, base_row.entry.label, row.value,
                                    base_row.value, overlap, paired_test(entry, base_row.entry, metric)))
    return deltas


def build_leaderboard(entries: Sequence[Entry], metric: str = DEFAULT_METRIC,
                      runs_dir: Path | None = None) -> Leaderboard:
    """Rank entries by ``metric`` within each eval set (same eval fingerprint and decoding) and compare them; with
    ``runs_dir``, its arena votes add each row's arena rating."""
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
    families, deltas = [], []
    for index, eval_set in enumerate(eval_sets, 1):
        eval_set.index = index
        eval_set.verdict, eval_set.note = _verdict(eval_set.rows, metric)
        eval_set.showcase = build_showcase([row.entry for row in eval_set.rows], metric)
        families += _families(eval_set)
        deltas += _baseline_deltas(eval_set, metric)
    if len(eval_sets) > 1:
        notes.insert(0, f"{len(eval_sets)} eval sets: ranked separately (runs scored on different eval records, or"
                        " decoded with different settings, are never ranked against each other)")
    definition = next((e.definitions[metric] for e in entries if metric in e.definitions), None)
    present = [m for m in KEY_METRICS if m != metric and any(m in e.metrics for e in entries)]
    board = Leaderboard(metric, definition, eval_sets, families, deltas, notes, [metric, *present])
    arena = load_ratings(Path(runs_dir)) if runs_dir is not None else None
    if arena is not None:
        board.arena, board.arena_root = arena[0], Path(runs_dir)
        notes.append(arena_summary(*arena))
    return board


# --------------------------------------------------------------------------------------- rendering
def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ci(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def table_header(board: Leaderboard) -> list[str]:
    metric, *others = board.columns
    return ["#", "run", "model", "size", "type", "tag", f"{metric} (95% CI)", *others, "attribution acc",
            *(ARENA_HEADER if board.arena else []), "train time", "baseline"]


def table_cells(board: Leaderboard, row: Row) -> list[str]:
    """One leaderboard row as display strings (shared by markdown and HTML)."""
    entry = row.entry
    others = board.columns[1:]
    main = fmt(row.value) + (f" {fmt_ci(row.ci)}" if row.ci else "")
    return [str(row.rank) if row.rank is not None else "—", entry.label, entry.model, entry.size or "—",
            entry.kind, entry.tag or "", main, *(fmt(entry.metrics.get(m)) for m in others),
            fmt(_number(entry.attribution.get("accuracy"))),
            *(arena_cells(board.arena_rating(entry)) if board.arena else []), fmt_duration(entry.wall_s),
            "yes" if entry.baseline else ""]


def family_header(board: Leaderboard) -> list[str]:
    return ["eval set", "family", "size", f"base ({board.metric})", f"instruct ({board.metric})", "difference"]


def family_cells(comparison: FamilyComparison) -> list[str]:
    c = comparison
    return [str(c.eval_set), c.family, c.size or "—", f"{fmt(c.base_value)} ({c.base})",
            f"{fmt(c.instruct_value)} ({c.instruct})", c.text]


def delta_header(board: Leaderboard) -> list[str]:
    return ["eval set", "run", board.metric, "baseline", "Δ", "Δ %", "95% CIs overlap", "paired test"]


def delta_cells(delta: BaselineDelta) -> list[str]:
    d = delta
    overlap = "—" if d.intervals_overlap is None else ("yes" if d.intervals_overlap else "no")
    test = format_p(d.test.p_value) if isinstance(d.test, Paired) else d.test
    pct = "—" if d.delta_pct is None else f"{d.delta_pct:+.1f}%"
    return [str(d.eval_set), d.run, fmt(d.value), fmt(d.baseline_value), f"{d.delta:+.3f}", pct, overlap, test]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)]


def _markdown(board: Leaderboard) -> str:
    out = [f"# Leaderboard: {board.metric}", ""]
    if board.definition:
        out += [f"{board.metric}: {board.definition}", ""]
    out += [f"- {note}" for note in board.notes] + ([""] if board.notes else [])
    for eval_set in board.eval_sets:
        out += [f"## {eval_set.title}", ""]
        out += _md_table(table_header(board), [table_cells(board, row) for row in eval_set.rows])
        out.append("")
        if eval_set.verdict:
            out += [f"Verdict: {eval_set.verdict.text}.", ""]
        elif eval_set.note:
            out += [f"Verdict: none ({eval_set.note}).", ""]
        if eval_set.showcase:
            out += ["### Answers side by side", "", *showcase_markdown(eval_set.showcase)]
    if board.families:
        out += ["## Base vs instruct (fine-tuned, best run of each)", ""]
        out += _md_table(family_header(board), [family_cells(c) for c in board.families]) + [""]
    if board.baseline_deltas:
        out += ["## Fine-tuned vs untuned baseline", ""]
        out += _md_table(delta_header(board), [delta_cells(d) for d in board.baseline_deltas]) + [""]
    return "\n".join(out)


def _csv(board: Leaderboard) -> str:
    metrics = board.all_metrics
    header = ["eval_set", "eval_fingerprint", "rank", "run", "eval", "model", "family", "size", "params", "type",
              "tag", "baseline", "metric", "value", "ci_low", "ci_high"]
    for name in metrics:
        header += [name, f"{name}_ci_low", f"{name}_ci_high"]
    header += ["attribution_accuracy", "attribution_macro_f1", "reference_accuracy", "blending_index",
               "train_wall_s", "tokens_per_s", "final_loss", "eval_loss", "baseline_delta", "path",
               *(ARENA_CSV if board.arena else [])]
    deltas = {(d.eval_set, d.run): d.delta for d in board.baseline_deltas}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for eval_set in board.eval_sets:
        for row in eval_set.rows:
            e = row.entry
            cells: list[Any] = [eval_set.index, eval_set.fingerprint or "", row.rank or "", e.run, e.eval_name,
                                e.model, e.family or "", e.size or "", e.params or "", e.kind, e.tag or "",
                                e.baseline, board.metric, _blank(row.value), *(_blank(c) for c in row.ci or ("", ""))]
            for name in metrics:
                ci = e.ci.get(name) or ("", "")
                cells += [_blank(e.metrics.get(name)), _blank(ci[0]), _blank(ci[1])]
            a = e.attribution
            cells += [_blank(_number(a.get(k))) for k in ("accuracy", "macro_f1", "reference_accuracy",
                                                         "blending_index")]
            cells += [_blank(_number(e.train.get(k))) for k in ("wall_s", "tokens_per_s", "final_loss", "eval_loss")]
            cells += [_blank(deltas.get((eval_set.index, e.label))), display_path(e.path)]
            cells += arena_csv(board.arena_rating(e)) if board.arena else []
            writer.writerow(cells)
    return buffer.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _paired_dict(test: Paired | str | None) -> dict[str, Any] | None:
    if test is None:
        return None
    if isinstance(test, str):
        return {"tested": False, "reason": test}
    return {"tested": True, "delta": test.delta, "ci": list(test.ci), "p_value": test.p_value,
            "significant": test.significant, "samples": test.samples, "resamples": test.resamples}


def _entry_dict(row: Row) -> dict[str, Any]:
    e = row.entry
    return {
        "rank": row.rank, "run": e.run, "eval": e.eval_name, "label": e.label, "model": e.model,
        "family": e.family, "size": e.size, "params": e.params, "type": e.kind, "instruct": e.instruct,
        "tag": e.tag, "baseline": e.baseline, "status": e.status, "value": row.value,
        "ci": list(row.ci) if row.ci else None, "metrics": e.metrics, "ci_all": {k: list(v) for k, v in e.ci.items()},
        "attribution": {k: e.attribution.get(k) for k in ("accuracy", "macro_f1", "reference_accuracy",
                                                          "blending_index")},
        "train": {k: e.train.get(k) for k in ("wall_s", "tokens_per_s", "final_loss", "eval_loss")},
        "path": display_path(e.path),
    }


def _as_dict(board: Leaderboard) -> dict[str, Any]:
    sets = []
    for s in board.eval_sets:
        verdict = None
        if s.verdict:
            verdict = {"winner": s.verdict.winner, "runner_up": s.verdict.runner_up, "text": s.verdict.text,
                       **(_paired_dict(s.verdict.test or s.verdict.reason) or {})}
        rows = [_entry_dict(row) for row in s.rows]
        for data, row in zip(rows, s.rows):
            rating = board.arena_rating(row.entry)
            data["arena"] = rating.to_dict() if rating else None
        sets.append({"index": s.index, "eval_fingerprint": s.fingerprint, "split": s.split, "samples": s.samples,
                     "decoding": s.decoding, "rows": rows, "verdict": verdict,
                     "note": s.note})
    return {
        "metric": board.metric, "definition": board.definition, "alpha": ALPHA, "notes": board.notes,
        "eval_sets": sets, "arena": board.arena.to_dict() if board.arena else None,
        "base_vs_instruct": [{"eval_set": c.eval_set, "family": c.family, "size": c.size, "base": c.base,
                              "base_value": c.base_value, "instruct": c.instruct, "instruct_value": c.instruct_value,
                              "better": c.better, "pct": c.pct, "text": c.text} for c in board.families],
        "baseline_deltas": [{"eval_set": d.eval_set, "run": d.run, "baseline": d.baseline, "value": d.value,
                             "baseline_value": d.baseline_value, "delta": d.delta, "delta_pct": d.delta_pct,
                             "intervals_overlap": d.intervals_overlap, "paired_test": _paired_dict(d.test)}
                            for d in board.baseline_deltas],
    }
