"""`persona run` and `persona sweep`: data (if missing) → train → merge → eval (+ baseline) → leaderboard."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from personaforge.config import TrainConfig, load_data_config, load_train_config
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.train.run import FINISHED, Run, list_runs

if TYPE_CHECKING:
    from personaforge.train.callbacks import ProgressFactory

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
    from personaforge.train.data import dataset_present

    path = Path(cfg.data.path)
    if dataset_present(cfg.data):
        return
    source = data_config or (DEFAULT_DATA_CONFIG if DEFAULT_DATA_CONFIG.exists() else None)
    if source is None:
        raise PersonaForgeError(f"data.path {cfg.data.path} does not exist and there is no data config to build it;"
                                " pass --data-config or run persona data build first")
    data_cfg, _ = load_data_config(source)
    log(f"building dataset {display_path(path)} from {display_path(source)}")
    build_dataset(data_cfg.model_copy(update={"out": str(path)}))


# Sections that do not change what training produces: a finished run is reused whatever they say.
NOT_TRAINING = ("output", "eval")


def _training_recipe(config: dict) -> dict | None:
    """A run config as it trains: defaults filled in (a run saved before a key existed compares equal to a config
    that leaves it at its default), without where it writes or how it is evaluated. None if it no longer loads."""
    try:
        full = TrainConfig.model_validate(config).model_dump(mode="json")
    except (ValueError, PersonaForgeError):  # a config from an older or newer personaforge: another recipe
        return None
    return {k: v for k, v in full.items() if k not in NOT_TRAINING}


def finished_run_for(cfg: TrainConfig) -> Run | None:
    wanted = _training_recipe(cfg.model_dump(mode="json"))
    for run in reversed(list_runs(Path(cfg.output.dir))):
        if run.status == FINISHED and _training_recipe(run.config) == wanted:
            return run
    return None


def _eval_overrides(cfg: TrainConfig) -> list[str]:
    """The config's eval section as persona eval overrides: a reused run is evaluated as this config says."""
    return [f"eval.{key}={value}" for key, value in cfg.eval.model_dump(mode="json").items()]


def _evaluated_as(run: Run, cfg: TrainConfig) -> bool:
    """Whether the run's eval results were generated with this config's eval settings (those that cannot change
    them aside, such as the batch size)."""
    from personaforge.evaluate.decoding import effective_decoding

    used = run.read_json("eval/eval/metrics.json").get("meta", {}).get("generation")
    if not isinstance(used, dict):
        return False
    wanted = cfg.eval.model_dump(mode="json", exclude={"max_samples"})
    # Greedy decoding ignores the seed, but the eval also draws its --max-samples subset and resamples with it.
    return effective_decoding(used) == effective_decoding(wanted) and used.get("seed") == wanted["seed"]


def run_pipeline(config: Path, overrides: list[str] | None = None, *, data_config: Path | None = None,
                 baseline: bool = True, merge: bool = True, max_samples: int | None = None,
                 reuse_finished: bool = False, log=print, progress: ProgressFactory | None = None) -> PipelineResult:
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
        result.skipped = _evaluated_as(run, cfg)
    else:
        run = train(cfg, config.stem, log=log, progress=progress)
    result.run = run
    if run.status != FINISHED:
        result.status, result.message = run.status, run.message or ""
        return result
    if result.skipped:
        result.status = FINISHED
        return result
    if merge and not (run.path / "merged" / "config.json").exists():
        merge_run(run, log=log)
    eval_settings = _eval_overrides(cfg)
    result.evaluations.append(evaluate_run(run, max_samples=max_samples, overrides=eval_settings, log=log).folder)
    if baseline:
        result.evaluations.append(evaluate_run(run, baseline=True, max_samples=max_samples, overrides=eval_settings,
                                               log=log).folder)
    result.status = FINISHED
    return result
