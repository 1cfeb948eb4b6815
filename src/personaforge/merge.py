"""`persona merge RUN`: adapter → merged weights in the training dtype, verified against the adapter model."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text, display_path, dumps_json, replace_dir
from personaforge.prompting import PromptFormat
from personaforge.train import PROMPT_FORMAT_FILE
from personaforge.train.data import load_dataset_dir
from personaforge.train.run import Run
from personaforge.train.tokenize import tokenize_records

# Largest |Δ logit| accepted between the adapter model and the merged one, per dtype.
TOLERANCE = {torch.float32: 1e-3, torch.float64: 1e-6, torch.bfloat16: 0.25, torch.float16: 0.05}


class MergeCheckFailed(Exception):
    """Merged and adapter logits differ: the merged weights are not written (exit 1)."""


@dataclass
class MergeResult:
    path: Path
    max_abs_diff: float
    tolerance: float
    samples: int


def check_disk(folder: Path, needed: int, what: str) -> None:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed:
        raise PersonaForgeError(f"not enough disk space for {what}: need about {needed / 1e9:.1f} GB, {free / 1e9:.1f} GB"
                                f" free in {display_path(probe)}; free some space first")


def sample_batches(run: Run, tokenizer, count: int = 4) -> list[dict[str, torch.Tensor]]:
    """A few real prompts+answers from the run's data, to compare logits on."""
    cfg = run.train_config()
    fmt = PromptFormat.from_json(run.read_json(PROMPT_FORMAT_FILE))
    dataset = load_dataset_dir(cfg.data)
    records = (dataset.eval or dataset.train)[:count]
    examples, _ = tokenize_records(records, fmt, tokenizer, cfg.data.max_length)
    return [{"input_ids": torch.tensor([e.input_ids])} for e in examples]


def merge_run(run: Run, log=print, allow_pickle: bool = False) -> MergeResult:
    """``allow_pickle`` (--allow-pickle) adds to the run's own model.allow_pickle; it never takes it away."""
    from personaforge import models

    run.require_finished("merged")
    cfg = run.train_config()
    env = run.read_json("env.json")
    model_cfg = cfg.model
    if allow_pickle:
        model_cfg = model_cfg.model_copy(update={"allow_pickle": True})
    if model_cfg.quantization != "none":
        # 4-bit weights cannot hold a merge: merge into the compute dtype instead.
        log(f"note: merging a {model_cfg.quantization} (QLoRA) run into {env.get('dtype', 'bfloat16')} weights")
        model_cfg = model_cfg.model_copy(update={"quantization": "none"})
    if env.get("dtype"):
        model_cfg = model_cfg.model_copy(update={"dtype": env["dtype"]})
    loaded = models.load_model(model_cfg)
    params = sum(p.numel() for p in loaded.model.parameters())
    check_disk(run.path, int(params * loaded.model.dtype.itemsize * 1.1) + 50_000_000, "the merged model")
    model = models.load_adapter(loaded.model, run.adapter_dir, allow_pickle=model_cfg.allow_pickle)
    model.eval()
    batches = sample_batches(run, loaded.tokenizer)
    device = next(model.parameters()).device
    with torch.no_grad():
        reference = [model(**{k: v.to(device) for k, v in b.items()}).logits.float() for b in batches]
        merged = model.merge_and_unload()
        merged.eval()
        produced = [merged(**{k: v.to(device) for k, v in b.items()}).logits.float() for b in batches]
    diff = max((float((a - b).abs().max()) for a, b in zip(reference, produced)), default=0.0)
    tolerance = TOLERANCE.get(merged.dtype, 0.05)
    if diff > tolerance:
        raise MergeCheckFailed(f"merge check failed: merged and adapter logits differ by up to {diff:.4g}"
                               f" (tolerance {tolerance} for {merged.dtype}); merged weights were not written")
    final = run.path / "merged"
    staging = run.path / ".merged.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging, safe_serialization=True)
    loaded.tokenizer.save_pretrained(staging)
    shutil.copy(run.path / PROMPT_FORMAT_FILE, staging / PROMPT_FORMAT_FILE)
    check = {"max_abs_logit_diff": diff, "tolerance": tolerance, "samples": len(batches),
             "dtype": str(merged.dtype).removeprefix("torch.")}
    atomic_write_text(staging / "merge_check.json", dumps_json(check))
    replace_dir(staging, final)
    log(json.dumps(check))
    return MergeResult(final, diff, tolerance, len(batches))
