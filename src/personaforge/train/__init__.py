"""`persona train`: fine-tune a model on a built dataset and leave a complete run folder.

    dataset = load_dataset_dir(cfg.data)        # files in, records out; fingerprints recorded
    plan = preflight(cfg, dataset)              # every user error here, before any folder exists
    run = Run.create(...)                       # folder, config.yaml, env.json, data.json, status=running
    model = load_model(cfg.model)               # embedded / hub / local / gguf; dtype decided once
    model = add_lora(model, cfg.lora)
    trainer = build_trainer(...)                # packing collator, callbacks, logging
    trainer.train(resume_from_checkpoint=...)
    save adapter; run.finish(metrics)
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from personaforge import __version__
from personaforge.config import TrainConfig
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.prompting import PromptFormat, choose_prompt_format
from personaforge.train.data import DatasetFiles, load_dataset_dir, validation_split
from personaforge.train.run import FAILED, FINISHED, INTERRUPTED, RUNNING, Run, resolve_run
from personaforge.train.tokenize import Example, TokenizeStats, tokenize_records

if TYPE_CHECKING:
    from personaforge.train.callbacks import ProgressFactory  # imports transformers: only for the annotations

PROMPT_FORMAT_FILE = "prompt_format.json"


class RunFailed(Exception):
    """Training started and then failed; the run is marked failed (exit 1)."""

    def __init__(self, run: Run, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.run = run


@dataclass
class Plan:
    """Everything preflight learned, so the run does not redo it."""

    source: object
    device: torch.device
    dtype: torch.dtype
    tokenizer: object
    prompt_format: PromptFormat
    train_examples: list[Example]
    validation_examples: list[Example]
    train_stats: TokenizeStats
    validation_stats: TokenizeStats
    memory: object | None
    notes: list[str]
    precision: object | None = None  # models.Precision: compute dtype, weights' dtype, why (and the CPU probe)


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _check_writable(folder: Path) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PersonaForgeError(f"output.dir: {display_path(folder)} is not writable ({display_path(probe)}); choose"
                                " another output.dir")


def preflight(cfg: TrainConfig, dataset: DatasetFiles) -> Plan:
    """Config, dataset, model source, tokenization and a memory estimate — all before any folder exists."""
    from personaforge import models

    _check_writable(Path(cfg.output.dir))
    device = models.pick_device()
    precision = models.pick_precision(cfg.model.dtype, device, threads=cfg.train.threads or None)
    dtype = precision.dtype
    if cfg.model.quantization != "none" and device.type != "cuda":
        raise PersonaForgeError(f"model.quantization: {cfg.model.quantization} (QLoRA) needs a CUDA GPU and this"
                                f" machine has {device.type}; set model.quantization: none")
    source = models.resolve_source(cfg.model.name)
    models.check_source_weights(source, cfg.model.allow_pickle)
    tokenizer = models.load_tokenizer(source, trust_remote_code=cfg.model.trust_remote_code)
    fmt = choose_prompt_format(cfg.data.prompt_style, tokenizer, dataset.has_messages, dataset.has_plain)
    train_records, validation_records = validation_split(dataset.train, cfg.data.validation_fraction, cfg.train.seed)
    train_examples, train_stats = tokenize_records(train_records, fmt, tokenizer, cfg.data.max_length)
    validation_examples, validation_stats = tokenize_records(validation_records, fmt, tokenizer, cfg.data.max_length)
    if not train_examples:
        raise PersonaForgeError(
            f"no usable sample: all {train_stats.samples} answers are longer than data.max_length"
            f" {cfg.data.max_length} tokens; raise data.max_length")
    notes = [f"dtype: {precision.describe()}"] if precision.probe or precision.autocast else []  # the CPU's choice
    if train_stats.dropped:
        notes.append(f"{train_stats.dropped} sample(s) dropped: the answer alone exceeds data.max_length"
                     f" {cfg.data.max_length} (listed in data.json)")
    model_config = _model_config(cfg, source)
    if model_config is not None:
        check_lora_targets(cfg, model_config)
    memory = _memory_estimate(cfg, source, device, model_config)
    if memory is not None and not memory.fits():
        suggestions = models.suggest_fits(memory, cfg) if hasattr(models, "suggest_fits") else []
        hint = f"; would fit: {'; '.join(suggestions)}" if suggestions else ""
        raise PersonaForgeError(f"this plan does not fit in memory: {memory.describe()}{hint}")
    return Plan(source, device, dtype, tokenizer, fmt, train_examples, validation_examples, train_stats,
                validation_stats, memory, notes, precision)


def check(cfg: TrainConfig) -> list[str]:
    """`persona train --check`: every preflight check (config, data, model source, tokenization, LoRA targets,
    memory) without creating anything; returns what a run would do, one line each, notes first."""
    dataset = load_dataset_dir(cfg.data)
    plan = preflight(cfg, dataset)
    lines = [f"note: {note}" for note in [*plan.notes, *eval_set_note(cfg, dataset, plan)]]
    files = list(dataset.files)
    shown = ", ".join(files[:4]) + (f", ... ({len(files)} files)" if len(files) > 4 else "")
    lines.append(f"data: {len(dataset.train)} train / {len(dataset.eval)} eval records from {shown}")
    lines.append(f"personas: {', '.join(dataset.personas) or 'none named (records without a persona)'}")
    stats = plan.train_stats
    lines.append(f"samples: {stats.kept} train ({stats.tokens} tokens, {stats.dropped} dropped), "
                 f"{plan.validation_stats.kept} validation; prompt style {plan.prompt_format.style}; "
                 f"max_length {cfg.data.max_length}")
    lines.append(f"model: {plan.source.name} ({plan.source.kind}) on {plan.device.type}, "
                 f"{str(plan.dtype).removeprefix('torch.')}, quantization {cfg.model.quantization}")
    if plan.memory is not None:
        lines.append(f"memory: {plan.memory.describe()}")
    return lines


def eval_set_note(cfg: TrainConfig, dataset: DatasetFiles, plan: Plan) -> list[str]:
    """Without an eval set, what is held out and how (the original pipeline split 10% off with seed 42)."""
    if dataset.eval:
        return []
    return [f"no eval set (data.eval_path, or eval.jsonl in a dataset folder), so persona eval will have nothing to"
            f" score; {plan.validation_stats.samples} of {len(dataset.train)} training records (data.validation_fraction"
            f" {cfg.data.validation_fraction}, chosen with train.seed {cfg.train.seed}) are held out for the"
            " validation loss only"]


def _model_config(cfg: TrainConfig, source):
    """The model's config without its weights (None for GGUF files, whose config lives inside the file)."""
    from transformers import AutoConfig

    if getattr(source, "kind", "") == "gguf":
        return None
    try:
        return AutoConfig.from_pretrained(source.location, trust_remote_code=cfg.model.trust_remote_code)
    except Exception:  # noqa: BLE001 - advisory; load_model reports real problems with a clear message
        return None


def check_lora_targets(cfg: TrainConfig, model_config) -> None:
    """lora.target_modules must name linear layers of this model: checked on a weightless (meta) skeleton."""
    from transformers import AutoModelForCausalLM

    if cfg.lora.target_modules == "all-linear":
        return
    try:
        with torch.device("meta"):
            skeleton = AutoModelForCausalLM.from_config(model_config, trust_remote_code=cfg.model.trust_remote_code)
    except Exception:  # noqa: BLE001 - unusual architectures: peft reports it at load time instead
        return
    names = {n.rsplit(".", 1)[-1] for n, m in skeleton.named_modules() if isinstance(m, torch.nn.Linear)}
    missing = [t for t in cfg.lora.target_modules if t not in names]
    if missing:
        raise PersonaForgeError(f"lora.target_modules: {', '.join(missing)} not in this model; its linear layers are:"
                                f" {', '.join(sorted(names))}")


def _memory_estimate(cfg: TrainConfig, source, device, model_config):
    from personaforge import models

    if model_config is None:
        return None
    text = getattr(model_config, "text_config", None) or model_config
    n_params = models.count_params(source)
    if not n_params:
        return None
    return models.estimate_memory(n_params, cfg, device, hidden=text.hidden_size, layers=text.num_hidden_layers,
                                  vocab=text.vocab_size)


def add_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.model.quantization != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.model.gradient_checkpointing)
    lora = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout,
                      target_modules=cfg.lora.target_modules, use_dora=cfg.lora.use_dora,
                      use_rslora=cfg.lora.use_rslora, task_type="CAUSAL_LM", bias="none",
                      layers_to_transform=_top_layers(model, cfg.lora.top_layers))
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise PersonaForgeError(f"lora.target_modules {cfg.lora.target_modules} do not match this model"
                                f" ({str(exc).splitlines()[0][:100]}); its linear layers are: {', '.join(names)}") from None


def _top_layers(model, top: int) -> list[int] | None:
    """The indices of the last ``top`` decoder layers, for peft's layers_to_transform (None: every layer)."""
    if not top:
        return None
    config = getattr(model.config, "text_config", None) or model.config
    layers = getattr(config, "num_hidden_layers", None)
    if not layers:
        raise PersonaForgeError("lora.top_layers: this model's config does not say how many layers it has;"
                                " remove lora.top_layers to adapt every layer")
    if top > layers:
        raise PersonaForgeError(f"lora.top_layers {top} is more than the model's {layers} layers; use at most {layers}"
                                " (or 0 for all)")
    return list(range(layers - top, layers))


def _env(plan: Plan, cfg: TrainConfig) -> dict:
    import accelerate
    import peft
    import transformers

    env = {
        "personaforge": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__, "accelerate": accelerate.__version__,
        "platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(plan.device), "dtype": str(plan.dtype).removeprefix("torch."),
        "precision": plan.precision.to_json() if plan.precision is not None else None,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")), "trust_remote_code": cfg.model.trust_remote_code,
        "allow_pickle": cfg.model.allow_pickle,
        "model_source": {"kind": plan.source.kind, "location": str(plan.source.location), "name": plan.source.name,
                         "license": plan.source.license},
        "command": " ".join(sys.argv),
    }
    if plan.device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(plan.device)
    return env


def _data_json(dataset: DatasetFiles, plan: Plan, cfg: TrainConfig) -> dict:
    return {
        "path": cfg.data.path, "files": dataset.files, "fingerprint": dataset.fingerprint(),
        "personas": dataset.personas, "prompt_style": plan.prompt_format.style,
        "train": plan.train_stats.to_json(), "validation": plan.validation_stats.to_json(),
        "eval_records": len(dataset.eval), "max_length": cfg.data.max_length,
    }


def _record_personas(run: Run, cfg: TrainConfig, dataset: DatasetFiles) -> None:
    """personas.json: chat, export, serve and push read the personas from the run, not from a dataset that may change."""
    from personaforge.run_personas import personas_from_dataset, write_run_personas

    data_path = Path(cfg.data.path)
    card = data_path / "dataset_card.json" if data_path.is_dir() else None
    write_run_personas(run.path, personas_from_dataset(dataset.personas, dataset.train + dataset.eval, card))


def _shared_run(create) -> Run:
    """Rank 0 creates the run folder; under DDP every other rank learns its path."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return create()
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState(cpu=not torch.cuda.is_available())
    holder = [str(create().path) if state.is_main_process else None]
    broadcast_object_list(holder)
    return Run(Path(holder[0]))


def train(cfg: TrainConfig, config_name: str, log=print, progress: ProgressFactory | None = None) -> Run:
    dataset = load_dataset_dir(cfg.data)
    plan = preflight(cfg, dataset)
    for note in [*plan.notes, *eval_set_note(cfg, dataset, plan)]:
        log(f"note: {note}")
    run = _shared_run(lambda: Run.create(Path(cfg.output.dir), cfg.output.name or config_name,
                                         cfg.model_dump(mode="json")))
    return _train_in(run, cfg, dataset, plan, resume_from=None, log=log, progress=progress)


def resume(spec: str, runs_dir: Path, log=print, progress: ProgressFactory | None = None) -> Run:
    run = resolve_run(spec, runs_dir)
    status = run.status
    if status == FINISHED:
        raise PersonaForgeError(f"run {run.name} already finished; nothing to resume")
    if status == RUNNING:
        raise PersonaForgeError(f"run {run.name} is still running (pid {run.read_json('status.json').get('pid')})")
    checkpoint = run.last_checkpoint()
    cfg = run.train_config()
    dataset = load_dataset_dir(cfg.data)
    recorded = run.read_json("data.json").get("fingerprint")
    if recorded and recorded != dataset.fingerprint():
        raise PersonaForgeError(f"the dataset at {cfg.data.path} changed since run {run.name} started; resuming would"
                                " train on other data — start a new run instead")
    plan = preflight(cfg, dataset)
    log(f"resuming {run.name} from {checkpoint.name if checkpoint else 'the start'} (was {status})")
    return _train_in(run, cfg, dataset, plan, resume_from=checkpoint, log=log, progress=progress)


def _train_in(run: Run, cfg: TrainConfig, dataset: DatasetFiles, plan: Plan, resume_from: Path | None, log,
              progress: ProgressFactory | None = None) -> Run:
    from personaforge import models
    from personaforge.train.callbacks import TrainingStopped
    from personaforge.train.trainer import build_trainer

    main = _is_main_process()
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    if main:
        run.set_status(RUNNING)
        run.write_json("env.json", _env(plan, cfg))
        run.write_json("data.json", _data_json(dataset, plan, cfg))
        run.write_json(PROMPT_FORMAT_FILE, plan.prompt_format.to_json())
        _record_personas(run, cfg, dataset)
    interrupt = None
    try:
        loaded = models.load_model(cfg.model, device=plan.device)
        for note in getattr(loaded, "notes", []):
            log(f"note: {note}")
        from transformers import set_seed

        set_seed(cfg.train.seed)  # LoRA's A matrices are random: the same seed gives the same start
        model = add_lora(loaded.model, cfg)
        trainer, interrupt = build_trainer(model, plan.tokenizer, plan.train_examples, plan.validation_examples, cfg,
                                           str(run.checkpoints_dir), str(run.logs_dir), device=plan.device,
                                           dtype=plan.dtype, progress=progress)
        interrupt.install()
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
        wall = time.perf_counter() - started
        interrupt.uninstall()
        if interrupt.requested:
            if main:
                run.set_status(INTERRUPTED, "stopped by Ctrl-C; a checkpoint was saved: persona train --resume"
                               f" {run.name}")
            return run
        if main:
            model.save_pretrained(run.adapter_dir)
            plan.tokenizer.save_pretrained(run.adapter_dir)
            (run.adapter_dir / PROMPT_FORMAT_FILE).write_text(json.dumps(plan.prompt_format.to_json(), indent=2))
            run.finish(_metrics(trainer, output, wall, plan))
        return run
    except TrainingStopped as exc:
        _mark(run, main, FAILED, str(exc))
        raise RunFailed(run, str(exc)) from None
    except PersonaForgeError as exc:
        _mark(run, main, FAILED, str(exc))
        raise
    except KeyboardInterrupt:
        _mark(run, main, INTERRUPTED, "aborted by a second Ctrl-C; resume from the last checkpoint")
        raise
    except Exception as exc:
        _mark(run, main, FAILED, f"{type(exc).__name__}: {exc}")
        raise RunFailed(run, f"training crashed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    finally:
        if interrupt is not None:
            interrupt.uninstall()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()  # gloo can abort at exit with a live group


def _mark(run: Run, main: bool, status: str, message: str) -> None:
    if main:
        run.set_status(status, message)


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _metrics(trainer, output, wall: float, plan: Plan) -> dict:
    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    tokens = trainer.real_tokens * int(os.environ.get("WORLD_SIZE", "1"))
    return {
        "final_loss": losses[-1] if losses else None,
        "train_loss": output.training_loss,
        "eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "tokens": tokens,
        "tokens_per_s": tokens / wall if wall > 0 else None,
        "wall_s": wall,
        "peak_memory_bytes": _peak_memory(plan.device),
        "device": str(plan.device),
        "dtype": str(plan.dtype).removeprefix("torch."),
        "loss_history": [{k: v for k, v in h.items() if k in ("step", "epoch", "loss", "eval_loss", "grad_norm",
                                                                 "learning_rate")} for h in history],
    }
