"""Training throughput three ways, on the bundled dataset, with SmolLM2-135M-Instruct and the same LoRA.

  personaforge  as shipped: `build_trainer` (packing collator, lm_head only on labelled positions)
  original      the original pipeline's style: plain HF `Trainer`, every sample padded to 512 tokens,
                the model's own full-sequence logits and loss (labels masked to the completion)
  trl           TRL `SFTTrainer` configured as its documentation recommends for this data on a CPU:
                padding-free batches, completion-only loss, gradient checkpointing off, bf16 autocast only
                where personaforge chose it (the CPU probe, model.dtype auto)
  trl-defaults  (diagnostic, not in the default list) TRL with its own defaults for bf16 and checkpointing

All trainers get the same tokenized examples (personaforge's tokenizer and truncation), the same LoRA start
(seeded), the same optimizer settings, sampler seed, batch size, step count, thread count and dtype (model.dtype
auto: bf16 autocast where the CPU probe found bf16 clearly faster, else fp32). Each runs in
its own subprocess, so its peak RSS is its own. Throughput counts real tokens only (no padding, no packing
filler) and leaves out the first optimizer step (allocator and thread-pool warm-up). The final loss is the
mean cross-entropy over the labelled tokens of a fixed held-out batch, computed the same way after each run.

Run: `.venv/bin/python bench/train_throughput.py --steps 8 --batch-size 8` (bench/run_all.py calls it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, TRAIN_CONFIG, build_bundled_dataset, matmul_peaks  # noqa: E402

TRAINERS = ("personaforge", "original", "trl")
DIAGNOSTIC = ("trl-defaults",)
ORIGINAL_MAX_LENGTH = 512  # the original pipeline padded every sample to this

FLOPS_FORMULA = (
    "needed FLOPs per sample of n real tokens with m labelled positions: 4·P_lin·n (frozen linear layers: forward,"
    " and backward for activation gradients only — frozen weights get no gradient) + 6·P_lora·n (LoRA: forward,"
    " activation and weight gradients) + 6·L·H·d·n(n+1) (causal attention scores QKᵀ and AV over the n(n+1)/2"
    " visible pairs, forward and 2× backward) + 4·V·h·m (lm_head on labelled positions only: forward and activation"
    " gradient; the tied embedding is frozen). Averaged over the epoch's samples per real token and multiplied by"
    " real tokens/s; element-wise work (norms, activations, softmax) is not counted.")


# ------------------------------------------------------------------------------------------- worker side
def _load(args):
    import torch
    from transformers import set_seed

    from personaforge import models
    from personaforge.config import load_train_config
    from personaforge.train import add_lora, preflight
    from personaforge.train.data import load_dataset_dir

    torch.set_num_threads(args.threads)
    overrides = [f"data.path={args.data}", f"train.max_steps={args.steps}", f"train.batch_size={args.batch_size}",
                 f"train.threads={args.threads}", "train.logging_steps=1", f"output.dir={args.work}/runs"]
    cfg, _ = load_train_config(TRAIN_CONFIG, overrides)
    plan = preflight(cfg, load_dataset_dir(cfg.data))
    loaded = models.load_model(cfg.model, device=plan.device, log=lambda line: None)
    set_seed(cfg.train.seed)  # LoRA's A matrices are random: every trainer starts from the same adapter
    model = add_lora(loaded.model, cfg)
    return cfg, plan, model


class _Clock:
    """Step end times and real-token counts, plus the RSS high-water mark while training (sampled)."""

    def __init__(self, tokens) -> None:
        import psutil

        self.tokens = tokens
        self.marks: list[tuple[float, int]] = []
        self.rss_per_step: list[int] = []
        self.process = psutil.Process()
        self.peak_rss = 0
        self.rss_before = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_rss = max(self.peak_rss, self.process.memory_info().rss)

    def callback(self):
        from transformers import TrainerCallback

        clock = self

        class StepClock(TrainerCallback):
            def on_train_begin(self, args, state, control, **kwargs):
                clock.started = time.perf_counter()
                clock._thread.start()

            def on_step_end(self, args, state, control, **kwargs):
                clock.marks.append((time.perf_counter(), clock.tokens()))
                clock.rss_per_step.append(clock.process.memory_info().rss)

            def on_train_end(self, args, state, control, **kwargs):
                clock._stop.set()

        return StepClock()

    def summary(self) -> dict:
        tokens_per_step = [b - a for (_, a), (_, b) in zip([(0, 0)] + self.marks[:-1], self.marks)]
        if len(self.marks) >= 2:  # steady state: leave out step 1 (warm-up)
            seconds = self.marks[-1][0] - self.marks[0][0]
            tokens = self.marks[-1][1] - self.marks[0][1]
        else:
            seconds = self.marks[-1][0] - self.started
            tokens = self.marks[-1][1]
        return {"steps_done": len(self.marks), "real_tokens": self.marks[-1][1] if self.marks else 0,
                "tokens_per_step": tokens_per_step, "measured_tokens": tokens, "measured_seconds": seconds,
                "tokens_per_s": tokens / seconds if seconds > 0 else None,
                "step_seconds": [b[0] - a[0] for a, b in zip([(self.started, 0)] + self.marks[:-1], self.marks)],
                "rss_before_train_bytes": self.rss_before, "peak_rss_training_bytes": self.peak_rss,
                "rss_per_step_bytes": self.rss_per_step}


class _ForwardCounter:
    """Positions the model computes in training (padding and packing filler included), and real tokens read from
    the inputs: the attention mask where there is one, else every position (padding-free rows have no filler)."""

    def __init__(self, model) -> None:
        self.positions = self.real = 0
        model.register_forward_pre_hook(self.hook, with_kwargs=True)

    def hook(self, module, args, kwargs) -> None:
        if not module.training:
            return
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]
        mask = kwargs.get("attention_mask")
        self.positions += ids.numel()
        self.real += int(mask.sum()) if mask is not None else ids.numel()


class PadToMaxLength:
    """The original pipeline's batching: every sample right-padded to max_length, with an attention mask."""

    def __init__(self, length: int, pad_token_id: int) -> None:
        self.length, self.pad_token_id = length, pad_token_id

    def __call__(self, examples):
        import torch

        from personaforge.train.tokenize import IGNORE

        input_ids = torch.full((len(examples), self.length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), self.length), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(examples), self.length), dtype=torch.long)
        for row, example in enumerate(examples):
            n = len(example)
            input_ids[row, :n] = torch.tensor(example.input_ids)
            labels[row, :n] = torch.tensor(example.labels)
            mask[row, :n] = 1
        return {"input_ids": input_ids, "labels": labels, "attention_mask": mask}


def _personaforge_trainer(cfg, plan, model, work: Path):
    from personaforge.train.trainer import build_trainer

    # The shipped code path. No validation set: its end-of-epoch pass is not part of any other trainer's run.
    trainer, _ = build_trainer(model, plan.tokenizer, plan.train_examples, [], cfg, str(work / "checkpoints"),
                               str(work / "logs"), device=plan.device, dtype=plan.dtype)
    return trainer, lambda: trainer.real_tokens  # the shipped counter: packing filler is not counted


def _original_trainer(cfg, plan, model, work: Path):
    from transformers import Trainer

    from personaforge.train.trainer import ExampleDataset, training_arguments

    args = training_arguments(cfg, str(work / "checkpoints"), device=plan.device, dtype=plan.dtype, has_validation=False)
    length = max(ORIGINAL_MAX_LENGTH, max(len(e) for e in plan.train_examples))
    trainer = Trainer(model=model, args=args, train_dataset=ExampleDataset(plan.train_examples),
                      data_collator=PadToMaxLength(length, plan.tokenizer.pad_token_id))
    return trainer, None


def _trl_trainer(cfg, plan, model, work: Path, *, tuned: bool = True):
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from personaforge.train.tokenize import IGNORE
    from personaforge.train.trainer import training_arguments

    # Pre-tokenized (TRL's documented "processed dataset" input): the very token ids the others train on.
    dataset = Dataset.from_dict({
        "input_ids": [e.input_ids for e in plan.train_examples],
        "completion_mask": [[int(label != IGNORE) for label in e.labels] for e in plan.train_examples]})
    base = training_arguments(cfg, str(work / "checkpoints"), device=plan.device, dtype=plan.dtype,
                              has_validation=False).to_dict()
    for key in ("activation_checkpointing", "activation_checkpointing_kwargs", "gradient_checkpointing",
                "gradient_checkpointing_kwargs", "bf16", "fp16"):
        base.pop(key, None)  # left to TRL's defaults (trl-defaults) or set below (trl)
    settings = {
        "padding_free": True,          # batches flattened into one row with restarting position ids: no padding
        "max_length": None,            # padding-free without packing requires it; the examples are already cut
        "completion_only_loss": True,  # loss on the completion tokens only
        "dataset_num_proc": None,
    }
    if tuned:
        settings.update({
            "activation_checkpointing": False, "gradient_checkpointing": False,  # TRL's default is on: ~1.3x the work
            # TRL's default is bf16 autocast: emulated on CPUs without AVX512-BF16/AMX, very slow. It gets the
            # dtype personaforge's CPU probe chose, like the other trainers (training_arguments).
            "bf16": plan.dtype == torch.bfloat16,
        })
    args = SFTConfig(**{**base, **settings})
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=plan.tokenizer)
    return trainer, None


def _heldout_loss(model, examples) -> tuple[float, int]:
    """Mean cross-entropy over labelled tokens, one sample at a time (no padding), in eval mode."""
    import torch
    import torch.nn.functional as F

    from personaforge.train.tokenize import IGNORE

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for example in examples:
            ids = torch.tensor([example.input_ids])
            labels = torch.tensor(example.labels[1:])
            logits = model(input_ids=ids, use_cache=False).logits[0, :-1].float()
            total += float(F.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum"))
            count += int((labels != IGNORE).sum())
    return total / max(count, 1), count


def _param_counts(model) -> dict:
    import torch

    linear = lora = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            if ".lora_" in name:
                lora += module.weight.numel()
            else:
                linear += module.weight.numel()
    config = model.config
    heads = config.num_attention_heads
    return {"linear": linear, "lora": lora, "layers": config.num_hidden_layers, "heads": heads,
            "head_dim": getattr(config, "head_dim", None) or config.hidden_size // heads,
            "hidden": config.hidden_size, "vocab": config.vocab_size}


def needed_flops(params: dict, examples) -> int:
    """FLOPs one training pass over ``examples`` needs (see FLOPS_FORMULA)."""
    from personaforge.train.tokenize import IGNORE

    total = 0
    for example in examples:
        n = len(example)
        m = sum(1 for label in example.labels[1:] if label != IGNORE)
        total += 4 * params["linear"] * n + 6 * params["lora"] * n
        total += 6 * params["layers"] * params["heads"] * params["head_dim"] * n * (n + 1)
        total += 4 * params["vocab"] * params["hidden"] * m
    return total


class _Profile:
    """torch.profiler over steps 2..3 (after warm-up): the operator table, by self CPU time (and memory)."""

    def __init__(self, folder: Path, name: str, memory: bool) -> None:
        self.folder, self.name, self.memory = folder, name, memory

    def callback(self):
        import torch
        from transformers import TrainerCallback

        outer = self

        class ProfileSteps(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step == 1:
                    outer.prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                                        profile_memory=outer.memory, record_shapes=True)
                    outer.prof.__enter__()

            def on_step_end(self, args, state, control, **kwargs):
                last = state.global_step in (3, state.max_steps)
                if last and hasattr(outer, "prof") and not getattr(outer, "done", False):
                    outer.prof.__exit__(None, None, None)
                    outer.done = True
                    outer.write()

        return ProfileSteps()

    def write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        averages = self.prof.key_averages(group_by_input_shape=False)
        text = averages.table(sort_by="self_cpu_time_total", row_limit=40)
        if self.memory:
            text += "\n\n" + averages.table(sort_by="self_cpu_memory_usage", row_limit=30)
        (self.folder / f"{self.name}-profile.txt").write_text(text + "\n")


def _category(name: str) -> str:
    """What a module is, for the saved-tensor breakdown (Llama-style names, as PEFT wraps them)."""
    if ".lora_dropout" in name:
        return "LoRA dropout (its float noise on a CPU)"
    if ".lora_A" in name or ".lora_B" in name:
        return "LoRA A/B inputs (dropped copy; folded: layer input + bool mask)"
    if name.endswith((".base_layer", "_proj")):
        return "inputs of frozen linear layers"
    if name.endswith("act_fn"):
        return "MLP activation (SiLU input)"
    if name.endswith(("layernorm", ".norm")):
        return "RMSNorm"
    if name.endswith("self_attn"):
        return "attention (RoPE, GQA-repeated K/V, sdpa)"
    if name.endswith(".mlp"):
        return "MLP gate*up product"
    if name.endswith("lm_head"):
        return "lm_head input"
    if name.endswith(("embed_tokens", "rotary_emb")):
        return "embeddings / rotary tables"
    return "other: " + name.rsplit(".", 1)[-1]


class _SavedTensors:
    """Bytes autograd keeps for the backward pass during one step, by the module that saved them.

    The activation memory of a training step is what autograd saves between forward and backward. Each saved
    tensor is attributed to the innermost module running when it was saved (forward hooks keep a stack), counted
    once per storage, and parameters (frozen weights that matmuls keep a reference to) are left out: they are in
    memory anyway. Counted in step 1, which the throughput leaves out, so the hooks' cost is not timed.
    """

    def __init__(self, model, counter: _ForwardCounter, step: int = 1) -> None:
        self.model, self.counter, self.step = model, counter, step
        self.by_category: dict[str, int] = {}
        self.by_last_dim: dict[int, int] = {}
        self.seen: set[int] = set()
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.stack: list[str] = []
        self.handles: list = []
        self.positions = 0

    def pack(self, tensor):
        ptr = tensor.untyped_storage().data_ptr()
        if ptr not in self.seen and ptr not in self.params:
            self.seen.add(ptr)
            nbytes = tensor.untyped_storage().nbytes()
            category = _category(self.stack[-1]) if self.stack else "logits and loss (outside the decoder)"
            self.by_category[category] = self.by_category.get(category, 0) + nbytes
            dim = int(tensor.shape[-1]) if tensor.dim() else 0
            self.by_last_dim[dim] = self.by_last_dim.get(dim, 0) + nbytes
        return tensor

    def _attach(self) -> None:
        def enter(name: str):
            def hook(module, args) -> None:
                self.stack.append(name)
            return hook

        def leave(module, args, output) -> None:  # returns None: a forward hook's return value replaces the output
            self.stack.pop()

        for name, module in self.model.named_modules():
            if name:
                self.handles.append(module.register_forward_pre_hook(enter(name)))
                self.handles.append(module.register_forward_hook(leave))

    def _detach(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()

    def callback(self):
        import torch
        from transformers import TrainerCallback

        outer = self

        class SavedTensorSteps(TrainerCallback):
            def on_step_begin(self, args, state, control, **kwargs):
                if state.global_step + 1 == outer.step:
                    outer.positions_before = outer.counter.positions
                    outer._attach()
                    outer.ctx = torch.autograd.graph.saved_tensors_hooks(outer.pack, lambda t: t)
                    outer.ctx.__enter__()

            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == outer.step and hasattr(outer, "ctx"):
                    outer.ctx.__exit__(None, None, None)
                    outer._detach()
                    outer.positions = outer.counter.positions - outer.positions_before
                    del outer.ctx

        return SavedTensorSteps()

    def summary(self) -> dict:
        total = sum(self.by_category.values())
        per_position = total / self.positions if self.positions else None
        return {"step": self.step, "positions": self.positions, "total_bytes": total,
                "bytes_per_position": per_position,
                "by_module_bytes": dict(sorted(self.by_category.items(), key=lambda item: -item[1])),
                "by_last_dim_bytes": {str(d): n for d, n in sorted(self.by_last_dim.items(), key=lambda i: -i[1])[:8]}}


def _trainer_dtype(trainer, plan) -> str:
    """The dtype the trainer's matrix products ran in: bf16 when it autocast (bf16=True), else the weights'."""
    if getattr(trainer.args, "bf16", False):
        return "bfloat16"
    return str(next(p for p in trainer.model.parameters()).dtype).removeprefix("torch.")


def run_worker(args) -> dict:
    import torch

    cfg, plan, model = _load(args)
    work = Path(args.work) / args.worker
    builders = {"personaforge": _personaforge_trainer, "original": _original_trainer, "trl": _trl_trainer,
                "trl-defaults": lambda *a: _trl_trainer(*a, tuned=False)}
    counter = _ForwardCounter(model)
    trainer, tokens = builders[args.worker](cfg, plan, model, work)
    clock = _Clock(tokens or (lambda: counter.real))
    trainer.add_callback(clock.callback())
    profile = saved = None
    if args.profile:
        profile = _Profile(Path(args.profile), args.worker, args.memory)
        trainer.add_callback(profile.callback())
    if args.memory:
        saved = _SavedTensors(model, counter)
        trainer.add_callback(saved.callback())
    started = time.perf_counter()
    output = trainer.train()
    train_seconds = time.perf_counter() - started
    heldout = plan.validation_examples[: args.heldout] or plan.train_examples[: args.heldout]
    loss, heldout_tokens = _heldout_loss(model, heldout)
    params = _param_counts(model)
    epoch_flops = needed_flops(params, plan.train_examples)
    result = {
        "trainer": args.worker,
        **clock.summary(),
        "computed_positions": counter.positions,
        "real_share_of_computed": clock.marks[-1][1] / counter.positions if counter.positions else None,
        "train_seconds": train_seconds,
        "train_loss": output.training_loss,
        "final_heldout_loss": loss,
        "heldout_samples": len(heldout),
        "heldout_labelled_tokens": heldout_tokens,
        "epoch_real_tokens": plan.train_stats.tokens,
        "epoch_samples": len(plan.train_examples),
        "epoch_needed_flops": epoch_flops,
        "params": params,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux reports KiB
        "torch_threads": torch.get_num_threads(),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "dtype": _trainer_dtype(trainer, plan),
        "precision": plan.precision.to_json() if getattr(plan, "precision", None) is not None else None,
    }
    if saved is not None:
        result["saved_for_backward"] = saved.summary()
    return result


# --------------------------------------------------------------------------------------- orchestrator side
def _spawn(args, name: str, data: Path, work: Path) -> dict:
    out = work / f"{name}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--result", str(out),
               "--data", str(data), "--work", str(work), "--steps", str(args.steps), "--batch-size",
               str(args.batch_size), "--threads", str(args.threads), "--heldout", str(args.heldout)]
    if args.profile:
        command += ["--profile", args.profile]
    if args.memory:
        command.append("--memory")
    print(f"[train] {name}: {args.steps} steps of batch {args.batch_size}, {args.threads} thread(s)", file=sys.stderr)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": str(args.threads)}
    completed = subprocess.run(command, cwd=REPO, env=env, check=False)
    if completed.returncode != 0 or not out.exists():
        return {"trainer": name, "error": f"worker exited {completed.returncode}"}
    return json.loads(out.read_text())


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def run(args) -> dict:
    """Run each trainer in its own subprocess, one after another; return the training section of the results."""
    with tempfile.TemporaryDirectory(prefix="pf-bench-train-") as tmp:
        work = Path(tmp)
        data = Path(args.data) if args.data else build_bundled_dataset(work / "data")
        peaks = matmul_peaks(args.threads)
        trainers = {name: _spawn(args, name, data, work) for name in args.trainers}
    for result in trainers.values():
        rate = result.get("tokens_per_s")
        if rate:
            result["seconds_per_epoch"] = result["epoch_real_tokens"] / rate
            flops = result["epoch_needed_flops"] / result["epoch_real_tokens"] * rate
            result["model_flops_per_s"] = flops
            # against the peak of the dtype its products ran in (bf16 autocast: the bf16 peak)
            result["utilisation_ratio"] = flops / peaks.get(result.get("dtype") or "float32", peaks["float32"])
            result["utilisation_by_peak"] = {dtype: flops / peak for dtype, peak in peaks.items()}
    ours = trainers.get("personaforge", {}).get("tokens_per_s")
    section = {
        "settings": {"model": "pkg:smollm2-135m-instruct", "config": str(TRAIN_CONFIG.relative_to(REPO)),
                     "dataset": "configs/data/default.yaml (data/default as persona data build writes it)",
                     "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads,
                     "heldout_samples": args.heldout, "original_max_length": ORIGINAL_MAX_LENGTH},
        "matmul_peak_flops": peaks["float32"],
        "matmul_peaks_flops": peaks,
        "flops_formula": FLOPS_FORMULA,
        "trainers": trainers,
    }
    for other in ("original", "trl", "trl-defaults"):
        if other in trainers:
            key = f"personaforge_vs_{other.replace('-', '_')}_ratio"
            section[key] = _ratio(ours, trainers[other].get("tokens_per_s"))
    counts = {name: r.get("tokens_per_step") for name, r in trainers.items() if r.get("tokens_per_step")}
    section["same_data_per_step"] = len({tuple(v) for v in counts.values()}) == 1 if counts else None
    return section


def table(section: dict) -> str:
    from common import fmt, markdown_table

    rows = []
    for name, r in section["trainers"].items():
        if "error" in r:
            rows.append([name, r["error"]] + [""] * 8)
            continue
        rows.append([name, fmt(r.get("tokens_per_s"), 1), fmt(r.get("seconds_per_epoch"), 0),
                     fmt(r["peak_rss_bytes"] / 2**30, 2), fmt(r.get("peak_rss_training_bytes", 0) / 2**30, 2),
                     fmt(r["final_heldout_loss"], 4), fmt(r.get("train_loss"), 4),
                     fmt((r.get("model_flops_per_s") or 0) / 1e9, 1), r.get("dtype", "float32"),
                     fmt(100 * (r.get("utilisation_ratio") or 0), 1)])
    header = ["trainer", "real tokens/s", "s per epoch", "peak RSS GiB", "peak RSS in training GiB",
              "held-out loss", "train loss", "model GFLOP/s", "dtype", "% of its dtype's matmul peak"]
    lines = [markdown_table(header, rows), ""]
    for key in sorted(k for k in section if k.endswith("_ratio")):
        lines.append(f"- {key}: {fmt(section[key], 2)}")
    peaks = section.get("matmul_peaks_flops") or {"float32": section["matmul_peak_flops"]}
    shown = ", ".join(f"{dtype} {peak / 1e9:,.1f}" for dtype, peak in peaks.items())
    lines.append(f"- matmul peaks: {shown} GFLOP/s (2048² products, {section['settings']['threads']} thread(s))")
    probe = next((r["precision"] for r in section["trainers"].values() if r.get("precision")), None)
    if probe:
        lines.append(f"- dtype: {probe['dtype']} ({probe['reason']})")
    lines.append(f"- same data per step: {section['same_data_per_step']}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8, help="optimizer steps per trainer (default 8)")
    p.add_argument("--batch-size", type=int, default=8, help="samples per optimizer step (default 8)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--heldout", type=int, default=16, help="held-out samples for the final loss (default 16)")
    p.add_argument("--trainers", type=lambda s: [t for t in s.split(",") if t], default=list(TRAINERS),
                   help=f"comma-separated, from {', '.join(TRAINERS + DIAGNOSTIC)}")
    p.add_argument("--data", help="dataset folder (default: build configs/data/default.yaml into a temp folder)")
    p.add_argument("--profile", help="write a torch.profiler table of steps 2-3 per trainer into this folder (the profiler slows the"
                   " measured steps: take profiles and numbers from separate runs)")
    p.add_argument("--memory", action="store_true",
                   help="count the bytes autograd saves for backward in step 1 (and profile memory with --profile)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    unknown = [t for t in args.trainers if t not in TRAINERS + DIAGNOSTIC]
    if unknown:
        parser().error(f"--trainers: unknown {', '.join(unknown)}; choose from {', '.join(TRAINERS + DIAGNOSTIC)}")
    if args.worker:
        os.chdir(REPO)
        result = run_worker(args)
        Path(args.result).write_text(json.dumps(result, indent=2))
        return
    section = run(args)
    if args.json:
        from common import write_json

        write_json(Path(args.json), section)
    print(table(section))


if __name__ == "__main__":
    main()
