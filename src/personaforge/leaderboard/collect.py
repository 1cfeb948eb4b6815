"""Reading eval results: every ``<run>/eval/<name>/metrics.json`` under a runs folder becomes one :class:`Entry`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.leaderboard.names import human_size, parse_family, parse_instruct, parse_size

BASELINE_SUFFIX = "-baseline"
LATEST = "latest"


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


def as_number(value: Any) -> float | None:
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
    # retrieval_level: per metric, what the person's own best-fitting training answer scores (a search, for scale)
    retrieval: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the entry is named everywhere: the run, plus the eval name when it is not the plain split."""
        return self.run if self.eval_name == self.split else f"{self.run} ({self.eval_name})"

    @property
    def kind(self) -> str:
        return "—" if self.instruct is None else ("instruct" if self.instruct else "base")

    @property
    def wall_s(self) -> float | None:
        return as_number(self.train.get("wall_s"))

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
    metrics = {key: number for key, value in data.items() if (number := as_number(value)) is not None}
    attribution = data.get("attribution") if isinstance(data.get("attribution"), dict) else {}
    if as_number(attribution.get("accuracy")) is not None:
        # Ranked and tested like any metric (--metric attribution): the mean of the per-sample 0/1 scores.
        metrics["attribution"] = float(attribution["accuracy"])
    ci = {}
    for key, bounds in (data.get("ci") or {}).items():
        if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(as_number(b) is not None for b in bounds):
            ci[key] = (float(bounds[0]), float(bounds[1]))
    found = data.get("retrieval_level") if isinstance(data.get("retrieval_level"), dict) else {}
    retrieval = {key: float(level["value"]) for key, level in found.items()
                 if isinstance(level, dict) and as_number(level.get("value")) is not None}
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
        retrieval=retrieval,
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
