"""`persona run` and `persona sweep`: data (if missing) → train → merge → eval (+ baseline) → leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from personaforge.config import TrainConfig, load_data_config, load_train_config
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.train.run import FINISHED, Run, list_runs

DEFAULT_DATA_CONFIG = Path("configs/data/default.yaml")


@dataclass
class PipelineResult:
    config: Path
    run: Run | None = None
    status: str = "pending"
    message: str = ""
    skipped: bool = False
    evaluations: list[Path] = field(default_factory=list)


def ensure_dataset(cfg: TrainConfig, data_config: Path | None, log) -> None:
    """Build the dataset the config trains on when it is not there yet."""
    from personaforge.dataset.build import build_dataset

    path = Path(cfg.data.path)
    if (path / "train.jsonl").exists() or path.is_file():
        return
    source = data_config or (DEFAULT_DATA_CONFIG if DEFAULT_DATA_CONFIG.exists() else None)
    if source is None:
        raise PersonaForgeError(f"data.path {cfg.data.path} does not exist and there is no data config to build it;"
                                " pass --data-config or run persona data build first")
    data_cfg, _ = load_data_config(source)
    log(f"building dataset {display_path(path)} from {display_path(source)}")
    build_dataset(data_cfg.model_copy(update={"out": str(path)}))


def _comparable(config: dict) -> dict:
    """A config without where it writes: two runs of the same recipe compare equal."""
    return {k: v for k, v in config.items() if k != "output"}


def finished_run_for(cfg: TrainConfig) -> Run | None:
    wanted = _comparable(cfg.model_dump(mode="json"))
    for run in reversed(list_runs(Path(cfg.output.dir))):
        if run.status == FINISHED and _comparable(run.config) == wanted:
            return run
    return None


def run_pipeline(config: Path, overrides: list[str] | None = None, *, data_config: Path | None = None,
                 baseline: bool = True, merge: bool = True, max_samples: int | None = None,
                 reuse_finished: bool = False, log=print) -> PipelineResult:
    from personaforge.evaluate.runner import evaluate_run
    from personaforge.merge import merge_run
    from personaforge.train import train

    cfg, notes = load_train_config(config, overrides or [])
    for note in notes:
        log(f"note: {note}")
    result = PipelineResult(config)
    ensure_dataset(cfg, data_config, log)
    run = finished_run_for(cfg) if reuse_finished else None
    if run is not None:
        log(f"{display_path(config)}: reusing finished run {run.name}")
        result.skipped = (run.path / "eval" / "eval" / "metrics.json").exists()
    else:
        run = train(cfg, config.stem, log=log)
    result.run = run
    if run.status != FINISHED:
        result.status, result.message = run.status, run.message or ""
        return result
    if result.skipped:
        result.status = FINISHED
        return result
    if merge and not (run.path / "merged" / "config.json").exists():
        merge_run(run, log=log)
    result.evaluations.append(evaluate_run(run, max_samples=max_samples, log=log).folder)
    if baseline:
        result.evaluations.append(evaluate_run(run, baseline=True, max_samples=max_samples, log=log).folder)
    result.status = FINISHED
    return result
