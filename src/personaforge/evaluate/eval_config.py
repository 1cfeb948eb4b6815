"""`persona eval --config EVAL.yaml`: the original pipeline's eval configs, evaluated as personaforge evaluates.

    cfg, notes = load_eval_config(path, overrides)      # its flat keys; unknown ones are errors with did-you-mean
    target = resolve_target(cfg)                        # a run (RUN, RUN/merged), a model folder, a hub id, a GGUF
    records = eval records at dataset_path              # a .jsonl file or a folder (data/eval); persona = Name:
    answering = transformers, or llama.cpp in a child   # use_gguf: never in this process
    metrics = score_answers(...)                        # the same core as persona eval RUN
    write metrics_dir/{metrics.json, predictions.jsonl, probes.json, report.md}

Its sampling settings (do_sample, temperature, top_p) are honoured and recorded in metrics.json, so the leaderboard
never ranks sampled results against greedy ones.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from personaforge.config import EvalSection, Section, validate_config
from personaforge.config.load import OverriddenDoc, parse_override
from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text, display_path, dumps_json, dumps_jsonl
from personaforge.generate import GenerationSettings
from personaforge.prompting import PromptFormat
from personaforge.train import PROMPT_FORMAT_FILE
from personaforge.train.data import jsonl_files, read_record_files
from personaforge.train.run import LATEST, Run
from personaforge.yamlio import load_yaml


def _eval_default(key: str) -> Any:
    return EvalSection.model_fields[key].get_default(call_default_factory=True)


class OriginalEvalConfig(Section):
    """Every key of the original pipeline's eval configs, plus personaforge's own decoding keys."""

    model_path: str | None = Field(None, description="a run's merged/ (or the run folder), a model folder, a hub id")
    model_subfolder: str | None = None
    dataset_path: str = Field(description="the eval records: a .jsonl file or a folder of them")
    metrics_dir: str | None = None
    max_samples: int | None = Field(None, description="a seeded subset stratified by persona; 0, -1 or null = all")
    max_new_tokens: int = Field(_eval_default("max_new_tokens"), ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    do_sample: bool = False
    use_gguf: bool = False
    gguf_model_path: str | None = None
    llama_cpp_binary: str | None = None
    llama_cpp_ctx: int | None = Field(None, ge=64)
    llama_cpp_gpu_layers: int = Field(0, ge=-1)
    llama_cpp_threads: int | None = Field(None, ge=1)
    cuda_visible_devices: str | int | list[int | str] | None = None
    data_format: str | None = None
    # personaforge's own decoding keys (the original had none of them); eval.KEY=VALUE overrides set them too
    repetition_penalty: float = Field(_eval_default("repetition_penalty"), ge=1.0)
    repetition_penalty_scope: Literal["answer", "prompt_and_answer"] = _eval_default("repetition_penalty_scope")
    end_rule: Literal["likelier_than_not", "argmax"] = _eval_default("end_rule")
    batch_size: int = Field(_eval_default("batch_size"), ge=1)
    seed: int = _eval_default("seed")

    @model_validator(mode="after")
    def _a_model(self) -> "OriginalEvalConfig":
        if self.use_gguf and not self.gguf_model_path:
            raise ValueError("use_gguf: true needs gguf_model_path (the .gguf file to evaluate)")
        if not self.use_gguf and not self.model_path:
            raise ValueError("needs model_path (a run's merged/ folder, a model folder or a hub id), or use_gguf:"
                             " true with gguf_model_path")
        if self.do_sample and self.temperature == 0:
            raise ValueError("do_sample: true needs temperature > 0 (or do_sample: false for greedy decoding)")
        return self


EVAL_ONLY_KEYS = frozenset({"model_path", "model_subfolder", "metrics_dir", "use_gguf", "gguf_model_path",
                            "llama_cpp_binary", "llama_cpp_ctx", "llama_cpp_gpu_layers", "llama_cpp_threads",
                            "do_sample"})


def is_eval_config(data: Any) -> bool:
    """The original's eval config: flat, with dataset_path and a model key, and no train config's keys."""
    if not isinstance(data, dict):
        return False
    keys = set(data)
    return "dataset_path" in keys and bool(keys & EVAL_ONLY_KEYS) and not keys & {"model", "data", "model_name"}


def _apply(data: dict, overrides: list[str]) -> dict:
    data = dict(data)
    for text in overrides:
        path, value = parse_override(text)
        if len(path) == 2 and path[0] == "eval":
            path = path[1:]  # eval.repetition_penalty=1.2, as for persona eval RUN
        if len(path) != 1:
            raise PersonaForgeError(f"override '{text}': an eval config's keys are flat, e.g. max_samples=10 or"
                                    " eval.repetition_penalty=1.2")
        data[path[0]] = value
    return data


def load_eval_config(path: Path, overrides: list[str] | None = None) -> tuple[OriginalEvalConfig, list[str]]:
    doc = load_yaml(path)
    data = doc.data
    if isinstance(data, dict) and ({"model", "data"} & set(data) or "model_name" in data):
        raise PersonaForgeError(f"{display_path(path)}: this is a training config; train it (persona train"
                                f" {display_path(path)}), then evaluate the run (persona eval RUN)")
    if isinstance(data, dict):
        data = _apply(data, overrides or [])
    where = OverriddenDoc(doc, str(path), overrides) if overrides else doc
    cfg = validate_config(OriginalEvalConfig, data, where, label=str(path))
    return cfg, _notes(cfg, data if isinstance(data, dict) else {})


def _notes(cfg: OriginalEvalConfig, given: dict) -> list[str]:
    notes = []
    if cfg.do_sample:
        notes.append(f"do_sample: true → sampled answers (temperature {cfg.temperature:g}, top_p {cfg.top_p:g}, top-k 50"
                     f" as in transformers, seed {cfg.seed}); recorded in metrics.json, so the leaderboard never ranks"
                     " them against greedy results")
    else:
        unused = [k for k in ("temperature", "top_p") if k in given]
        notes.append("do_sample: false → greedy answers" + (f" ({' and '.join(unused)} not used)" if unused else "")
                     + f"; an answer ends where ending is likelier than going on (end_rule: {cfg.end_rule})")
    if "repetition_penalty" not in given and cfg.repetition_penalty != 1.0:
        notes.append(f"repetition_penalty: {cfg.repetition_penalty:g} on the answer's own tokens (personaforge's"
                     " default; the original's eval used none: repetition_penalty=1.0 reproduces that)")
    if cfg.use_gguf:
        notes.append(f"use_gguf: true → {cfg.gguf_model_path} runs in llama.cpp (llama-cpp-python, in a child process),"
                     " decoded the same way as transformers models")
        if cfg.llama_cpp_binary:
            notes.append("llama_cpp_binary is ignored: personaforge runs llama.cpp through llama-cpp-python in a"
                         " child process; no binary is called")
        if cfg.model_path:
            notes.append(f"model_path {cfg.model_path}: used to find the run's prompt format and personas; the"
                         " answers come from the GGUF file")
    else:
        unused = [k for k in ("gguf_model_path", "llama_cpp_binary", "llama_cpp_ctx", "llama_cpp_gpu_layers",
                              "llama_cpp_threads") if given.get(k) is not None]
        if unused:
            notes.append(f"{', '.join(unused)}: not used (use_gguf: false)")
    if cfg.cuda_visible_devices is not None:
        value = cfg.cuda_visible_devices
        devices = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        notes.append(f"cuda_visible_devices is ignored: set CUDA_VISIBLE_DEVICES in the environment"
                     f" (CUDA_VISIBLE_DEVICES={devices} persona eval ...)")
    if cfg.data_format is not None:
        notes.append("data_format is ignored: personaforge reads each record's own fields (prompt/completion, or"
                     " messages)")
    return notes


# ------------------------------------------------------------------------------------------ the model
@dataclass
class Target:
    """What answers: a run (its merged model or adapter), a model folder or hub id, or a GGUF file."""

    name: str  # what metrics.json calls the model
    run: Run | None = None
    model_folder: str | None = None  # a folder or hub id to load with transformers
    gguf: Path | None = None
    fmt_file: Path | None = None  # a prompt_format.json that says how the model was trained
    notes: list[str] = field(default_factory=list)


def _is_run(path: Path) -> bool:
    return (path / "config.yaml").is_file() and (path / "status.json").is_file()


def resolve_target(cfg: OriginalEvalConfig) -> Target:
    model_path = cfg.model_path
    if model_path and cfg.model_subfolder:
        if not Path(model_path).expanduser().is_dir():
            raise PersonaForgeError(f"model_subfolder: {cfg.model_subfolder} inside hub id {model_path}: personaforge"
                                    " loads hub models whole; download it (huggingface-cli download"
                                    f" {model_path} --local-dir DIR) and set model_path: DIR/{cfg.model_subfolder}")
        model_path = str(Path(model_path) / cfg.model_subfolder)
    run = None
    notes: list[str] = []
    local = Path(model_path).expanduser() if model_path else None
    if local is not None and _is_run(local):
        run = Run(local.resolve())  # a run folder: its merged model, else base + adapter
    elif local is not None and local.name == "merged" and _is_run(local.parent):
        run = Run(local.parent.resolve())
    elif local is not None and not local.exists() and local.name == "merged" and _is_run(local.parent / LATEST):
        # The original merged into <output_dir>/merged; personaforge keeps each run in <output_dir>/<run>/.
        run = Run((local.parent / LATEST).resolve())
        notes.append(f"model_path {model_path}: personaforge keeps runs in {display_path(local.parent)}/<run>/, so"
                     f" this is the newest finished run there, {run.name} (its merged/ model, else base + adapter)")
    if cfg.use_gguf:
        gguf = Path(cfg.gguf_model_path).expanduser()
        if not gguf.is_file():
            exported = sorted((run.path / "export").glob("*.gguf")) if run is not None else []
            hint = (f" (persona export gguf wrote {display_path(exported[-1])}: set gguf_model_path to it)" if exported
                    else "; give the .gguf file to evaluate (persona export gguf RUN writes RUN/export/*.gguf)")
            raise PersonaForgeError(f"gguf_model_path: {cfg.gguf_model_path} not found{hint}")
        if run is None and gguf.parent.name == "export" and _is_run(gguf.parent.parent):
            run = Run(gguf.parent.parent.resolve())  # persona export gguf writes RUN/export/
        fmt_file = run.path / PROMPT_FORMAT_FILE if run else None
        if fmt_file is None and local is not None and (local / PROMPT_FORMAT_FILE).is_file():
            fmt_file = local / PROMPT_FORMAT_FILE  # a merged/ folder copied out of its run
        return Target(gguf.name, run=run, gguf=gguf, fmt_file=fmt_file, notes=notes)
    if run is not None:
        run.require_finished("evaluated")
        return Target(run.train_config().model.name, run=run, fmt_file=run.path / PROMPT_FORMAT_FILE, notes=notes)
    from personaforge import models

    source = models.resolve_source(model_path)  # a user error here (no config.json, not a hub id) names model_path
    fmt_file = Path(source.location) / PROMPT_FORMAT_FILE if source.kind == "local" else None
    return Target(model_path, model_folder=model_path,
                  fmt_file=fmt_file if fmt_file is not None and fmt_file.is_file() else None)


# ------------------------------------------------------------------------------------------ the data
def _training_files(dataset_path: Path) -> list[Path]:
    """The original's layout: eval/ (or eval/eval.jsonl) beside the training batches, or a dataset folder's
    train.jsonl beside eval.jsonl."""
    folder = dataset_path if dataset_path.is_dir() else dataset_path.parent
    if (folder.parent / "train.jsonl").is_file() and folder.name == "eval":
        return [folder.parent / "train.jsonl"]
    if (folder / "train.jsonl").is_file() and dataset_path.is_file():
        return [folder / "train.jsonl"]
    if folder.name == "eval":
        return sorted(p for p in folder.parent.glob("*.jsonl") if p.is_file())
    return []


@dataclass
class EvalData:
    records: list[dict]
    train: list[dict]
    where: Any
    notes: list[str]


def load_eval_data(cfg: OriginalEvalConfig, target: Target) -> EvalData:
    from personaforge.evaluate.runner import unnamed_persona_problem

    dataset_path = Path(cfg.dataset_path)
    files = jsonl_files(dataset_path, "dataset_path")
    root = dataset_path if dataset_path.is_dir() else dataset_path.parent
    records, origins, _ = read_record_files(files, root)
    if not records:
        raise PersonaForgeError(f"dataset_path: {display_path(dataset_path)} has no records to evaluate")

    def where(record: dict) -> str:
        return origins.get(id(record)) or f"record {record.get('id')}"

    unnamed_persona_problem(records, where)
    notes: list[str] = []
    train: list[dict] = []
    if target.run is not None:
        from personaforge.train.data import load_dataset_dir

        try:
            train = load_dataset_dir(target.run.train_config().data).train
            notes.append(f"attribution: the classifier learns from run {target.run.name}'s training records")
        except PersonaForgeError as exc:
            notes.append(f"run {target.run.name}'s training data does not load ({exc}); looking beside dataset_path")
    if not train:
        train_files = _training_files(dataset_path)
        if train_files:
            train, train_origins, _ = read_record_files(train_files, train_files[0].parent)
            unnamed_persona_problem(train, lambda r: train_origins.get(id(r), str(r.get("id"))))
            shown = ", ".join(display_path(p) for p in train_files[:3]) + (", ..." if len(train_files) > 3 else "")
            notes.append(f"attribution: the classifier learns from the training records beside dataset_path ({shown})")
        else:
            train = records
            notes.append("attribution: no training records found beside dataset_path, so the classifier learns from"
                         " the eval references themselves (its reference accuracy is then optimistic); keep the eval"
                         " folder beside the training files (data/eval next to data/*.jsonl) to avoid this")
    trained = {str(r.get("persona")) for r in train}
    unseen = sorted({str(r["persona"]) for r in records} - trained)
    if unseen:
        first = next(r for r in records if str(r["persona"]) in unseen)
        raise PersonaForgeError(f"{where(first)}: persona {unseen[0]!r} has no training records"
                                f" ({', '.join(sorted(trained))} do); evaluate with the eval set of the data the model"
                                " was trained on")
    return EvalData(records, train, where, notes)


# ------------------------------------------------------------------------------------------ answering
def settings_of(cfg: OriginalEvalConfig) -> GenerationSettings:
    return GenerationSettings(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature if cfg.do_sample else 0.0,
                              top_p=cfg.top_p if cfg.do_sample else 1.0, batch_size=cfg.batch_size, seed=cfg.seed,
                              repetition_penalty=cfg.repetition_penalty,
                              repetition_penalty_scope=cfg.repetition_penalty_scope, end_rule=cfg.end_rule)


def _prompt_format(target: Target, eos_token: str | None) -> PromptFormat:
    import json

    if target.fmt_file is not None and target.fmt_file.is_file():
        return PromptFormat.from_json(json.loads(target.fmt_file.read_text(encoding="utf-8")))
    # Not trained by personaforge: the original pipeline trained every model on its plain text.
    return PromptFormat("plain", None, eos_token)


def _gguf_answering(cfg: OriginalEvalConfig, target: Target, settings: GenerationSettings, work: Path, log):
    from personaforge.evaluate.runner import Answering
    from personaforge.llama_worker import LLAMA_CPP_MISSING, LlamaJob, llama_cpp_problem, run_job
    from personaforge.native import NativeCrash

    problem = llama_cpp_problem()
    if problem is not None:
        raise PersonaForgeError(f"use_gguf: {problem}" if problem != LLAMA_CPP_MISSING
                                else f"use_gguf: {LLAMA_CPP_MISSING}; or evaluate the merged model (use_gguf: false)")
    fmt = _prompt_format(target, None)
    tokenizer = None
    if fmt.style == "chat":  # the run's chat template renders the prompt; llama.cpp only continues the text
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(target.run.adapter_dir)
    threads = cfg.llama_cpp_threads or max(1, os.cpu_count() or 1)

    def answers(prompts: list[str], stops: list[str]) -> list[str]:
        n_ctx = cfg.llama_cpp_ctx or (max(len(p) for p in prompts) // 2 + settings.max_new_tokens + 64)
        for repack in (True, False):
            job = LlamaJob(target.gguf, n_ctx=n_ctx, repack=repack, threads=threads, logits_all=False,
                           n_gpu_layers=cfg.llama_cpp_gpu_layers)
            job.generate(prompts, max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                         top_p=settings.top_p, seed=settings.seed, repetition_penalty=settings.repetition_penalty,
                         repetition_penalty_scope=settings.repetition_penalty_scope, end_rule=settings.end_rule,
                         stop=stops, add_bos=fmt.style == "plain")
            log_file = work / ("llama-cpp.log" if repack else "llama-cpp.no-repack.log")
            try:
                return run_job(job, work / "job", log_file, "llama.cpp")["results"][0]["answers"]
            except NativeCrash as crash:
                # Measured on Intel AMX CPUs: llama.cpp crashes on repacked q8_0 weights (llama.cpp issue 20824).
                if not repack:
                    raise
                log(f"warning: {crash}; generating again without weight repacking (llama.cpp's --no-repack)")
        raise AssertionError("unreachable")

    render = (lambda c: fmt.render(c)[0]) if tokenizer is None else (lambda c: fmt.render(c, tokenizer)[0])
    stops = [s for s in [fmt.eos_token, "<|im_end|>"] if s]
    return fmt, Answering(render=render, generate=answers, chat_stops=stops)


# ------------------------------------------------------------------------------------------ the command
@dataclass
class ConfigEvalResult:
    folder: Path
    metrics: dict
    notes: list[str]


def _metrics_dir(cfg: OriginalEvalConfig, target: Target, config_path: Path) -> Path:
    if cfg.metrics_dir:
        folder = Path(cfg.metrics_dir)
    elif target.run is not None:
        folder = target.run.path / "eval" / Path(cfg.dataset_path).stem
    else:
        raise PersonaForgeError(f"{display_path(config_path)}: missing metrics_dir; add metrics_dir: FOLDER (where"
                                " metrics.json, predictions.jsonl and report.md go)")
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PersonaForgeError(f"metrics_dir: {display_path(folder)} is not writable ({display_path(probe)} is not);"
                                " choose another metrics_dir")
    return folder


def evaluate_config(config_path: Path, overrides: list[str] | None = None, *, max_samples: int | None = None,
                    allow_pickle: bool = False, log=print) -> ConfigEvalResult:
    """Evaluate what an original-pipeline eval config names; every user error before metrics_dir is created."""
    from personaforge.evaluate.runner import (conversations_of, fingerprint, hf_answerer, score_answers,
                                              stratified_subset, systems_of)

    cfg, notes = load_eval_config(config_path, overrides)
    target = resolve_target(cfg)
    data = load_eval_data(cfg, target)
    notes += target.notes + data.notes
    for note in notes:
        log(f"note: {note}")
    limit = max_samples if max_samples is not None else (cfg.max_samples or 0)
    records = stratified_subset(data.records, max(limit, 0), cfg.seed)
    conversations = conversations_of(records, data.where)
    systems = systems_of(data.train + data.records)
    folder = _metrics_dir(cfg, target, config_path)
    settings = settings_of(cfg)

    work = Path(tempfile.mkdtemp(prefix="persona-eval-"))
    try:
        if cfg.use_gguf:
            fmt, answering = _gguf_answering(cfg, target, settings, work, log)
            backend, device, dtype = "llama.cpp", "cpu" if cfg.llama_cpp_gpu_layers == 0 else "gpu", None
        else:
            loaded = _load_hf(target, allow_pickle, log)
            fmt = _prompt_format(target, loaded.tokenizer.eos_token)
            answering = hf_answerer(loaded, fmt, settings)
            backend, device, dtype = "transformers", str(loaded.device), str(loaded.dtype).removeprefix("torch.")
        metrics, rows, probes = score_answers(records, conversations, systems, data.train, fmt, answering,
                                              seed=cfg.seed, log=log, label=backend)
    except BaseException:
        _keep_logs(work, folder)
        raise
    metrics["meta"] = {
        "run": target.run.name if target.run else None, "model": target.name, "family": None, "params": None,
        "instruct": None, "baseline": False, "split": Path(cfg.dataset_path).stem, "samples": len(records),
        "eval_fingerprint": fingerprint(records), "tag": None, "prompt_style": fmt.style,
        "generation": asdict(settings), "backend": backend, "device": device, "dtype": dtype,
        "config": display_path(config_path), "dataset": cfg.dataset_path, "notes": notes,
    }
    _write_into(folder, metrics, rows, probes)
    shutil.rmtree(work, ignore_errors=True)
    return ConfigEvalResult(folder, metrics, notes)


def _keep_logs(work: Path, folder: Path) -> None:
    """llama.cpp's log after a failure goes where the results would have gone; the scratch folder does not stay."""
    logs = list(work.glob("*.log"))
    if logs:
        folder.mkdir(parents=True, exist_ok=True)
        for log_file in logs:
            shutil.copy(log_file, folder / log_file.name)
    shutil.rmtree(work, ignore_errors=True)


def _load_hf(target: Target, allow_pickle: bool, log):
    from personaforge import models
    from personaforge.config import ModelSection
    from personaforge.evaluate.runner import load_for_eval

    if target.run is not None:
        cfg = target.run.train_config()
        if allow_pickle:
            cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"allow_pickle": True})})
        return load_for_eval(target.run, cfg, False, log)
    return models.load_model(ModelSection(name=target.model_folder, allow_pickle=allow_pickle), log=log)


def _write_into(folder: Path, metrics: dict, rows: list[dict], probes: dict) -> None:
    """The four files, each written atomically into metrics_dir (other files there are left alone: the original
    kept several models' metrics in one folder)."""
    from personaforge.evaluate.report import render_report

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "predictions.jsonl", dumps_jsonl(rows))
    atomic_write_text(folder / "probes.json", dumps_json(probes))
    atomic_write_text(folder / "report.md", render_report(metrics, rows))
    atomic_write_text(folder / "metrics.json", dumps_json(metrics))  # last: its presence means the rest is there
