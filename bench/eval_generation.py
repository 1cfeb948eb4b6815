"""Evaluation speed: batched generation against one prompt at a time, greedy, base SmolLM2.

Both go through `personaforge.generate.generate` (the evaluation's own path) with the eval split's prompts in
the training prompt format and the same stop strings as `persona eval`. Tokens/s counts the answer tokens
(each answer re-tokenized after the stop-string cut), so padding and the steps a finished row idles in its
batch are not counted. Greedy answers should be identical; near-ties in the logits can flip a token when the
batch shape changes the floating-point summation order, so the share of identical answers is reported.
The largest batch size also runs once the way generate() worked before per-prompt prefill (its own padded prefill
per length bucket, a cache grown by concatenation), for the before/after ratio.

Run: `.venv/bin/python bench/eval_generation.py --prompts 32 --batch-sizes 8,16,32` (bench/run_all.py calls it).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODEL, build_bundled_dataset, fmt, markdown_table  # noqa: E402


def eval_prompts(data: Path, count: int, tokenizer) -> tuple[list[str], list[str], bool]:
    """The first ``count`` eval prompts of a stratified subset, as `persona eval` renders them."""
    from personaforge.config import DataSection
    from personaforge.evaluate.runner import stratified_subset
    from personaforge.prompting import Conversation, choose_prompt_format, conversation_from_record
    from personaforge.train.data import load_dataset_dir

    dataset = load_dataset_dir(DataSection(path=str(data)))
    fmt_ = choose_prompt_format("auto", tokenizer, dataset.has_messages, dataset.has_plain)
    records = stratified_subset(dataset.eval, count, seed=0)  # each persona's share, as persona eval samples
    chosen = {id(r) for r in records}
    records += [r for r in dataset.eval if id(r) not in chosen][: count - len(records)]  # rounding left it short
    prompts = []
    for record in records:
        c = conversation_from_record(record)
        prompts.append(fmt_.render(Conversation(c.system, c.name, c.history, c.question), tokenizer)[0])
    stops = [s for s in [fmt_.eos_token, "<|im_end|>"] if s] if fmt_.style == "chat" else fmt_.stop_strings(
        sorted({str(r.get("persona")) for r in dataset.eval}))
    return prompts, stops, fmt_.style == "plain"


def _timed(model, tokenizer, prompts, batch_size: int, args, stops, special,
           padded: bool = False) -> tuple[list[str], float]:
    """``padded``: generate()'s own left-padded prefill per length bucket and its growing cache, which is what
    personaforge did before prompts were prefilled one by one from shared prefixes (the before/after row)."""
    from personaforge import generate as generation
    from personaforge.generate import GenerationSettings, generate

    if padded:
        original, generation._can_prefill_separately = generation._can_prefill_separately, lambda *args: False
        try:
            return _timed(model, tokenizer, prompts, batch_size, args, stops, special)
        finally:
            generation._can_prefill_separately = original
    # Plain greedy, as when the README's numbers were measured: the default end rule lets answers run longer,
    # which changes the work per prompt, not the batching being measured.
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, temperature=0.0, batch_size=batch_size,
                                  end_rule="argmax")
    start = time.perf_counter()
    if batch_size == 1:  # the original pipeline's way: one generate call per prompt
        answers = [generate(model, tokenizer, [p], settings, stop_strings=stops, add_special_tokens=special)[0]
                   for p in prompts]
    else:
        answers = generate(model, tokenizer, prompts, settings, stop_strings=stops, add_special_tokens=special)
    return answers, time.perf_counter() - start


def run(args) -> dict:
    import torch

    from personaforge import models
    from personaforge.config import ModelSection

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="pf-bench-eval-") as tmp:
        data = Path(args.data) if args.data else build_bundled_dataset(Path(tmp) / "data")
        # as persona eval loads it: weights in the dtype the CPU probe chose (model.dtype auto)
        loaded = models.load_model(ModelSection(name=MODEL), log=lambda line: None, inference=True,
                                   threads=args.threads)
        prompts, stops, special = eval_prompts(data, args.prompts, loaded.tokenizer)
    model, tokenizer = loaded.model, loaded.tokenizer
    _timed(model, tokenizer, prompts[:1], 1, argparse.Namespace(max_new_tokens=4), stops, special)  # warm-up

    def tokens(answers: list[str]) -> int:
        return sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers)

    print(f"[eval] one at a time: {len(prompts)} prompts, up to {args.max_new_tokens} new tokens", file=sys.stderr)
    single, seconds = _timed(model, tokenizer, prompts, 1, args, stops, special)
    section: dict = {
        "settings": {"model": MODEL, "dtype": str(loaded.dtype).removeprefix("torch."),
                     "precision": loaded.precision.to_json() if loaded.precision else None,
                     "prompts": len(prompts), "max_new_tokens": args.max_new_tokens,
                     "threads": args.threads, "greedy": True},
        "single": {"seconds": seconds, "answer_tokens": tokens(single), "tokens_per_s": tokens(single) / seconds},
    }
    for size in args.batch_sizes:
        print(f"[eval] batch {size}", file=sys.stderr)
        answers, seconds = _timed(model, tokenizer, prompts, size, args, stops, special)
        rate = tokens(answers) / seconds
        same = sum(a == b for a, b in zip(answers, single)) / len(prompts)
        section[f"batch_{size}"] = {"seconds": seconds, "answer_tokens": tokens(answers), "tokens_per_s": rate,
                                    "identical_share": same}
        section[f"batch{size}_vs_single_ratio"] = rate / section["single"]["tokens_per_s"]
    if args.batch_sizes:
        size = max(args.batch_sizes)
        print(f"[eval] batch {size}, padded prefill (before)", file=sys.stderr)
        answers, seconds = _timed(model, tokenizer, prompts, size, args, stops, special, padded=True)
        section["padded_prefill"] = {"batch_size": size, "seconds": seconds, "answer_tokens": tokens(answers),
                                     "tokens_per_s": tokens(answers) / seconds,
                                     "identical_share": sum(a == b for a, b in zip(answers, single)) / len(prompts)}
        section["prefilled_vs_padded_prefill_ratio"] = section[f"batch_{size}"]["tokens_per_s"] / (
            section["padded_prefill"]["tokens_per_s"])
    return section


def table(section: dict) -> str:
    rows = [["one at a time", fmt(section["single"]["tokens_per_s"], 1), fmt(section["single"]["seconds"], 1), "1.00",
             "—"]]
    for key, value in section.items():
        if key.startswith("batch_"):
            size = key.removeprefix("batch_")
            rows.append([f"batch {size}", fmt(value["tokens_per_s"], 1), fmt(value["seconds"], 1),
                         fmt(section[f"batch{size}_vs_single_ratio"], 2), f"{100 * value['identical_share']:.0f}%"])
    padded = section.get("padded_prefill")
    if padded:
        rows.append([f"batch {padded['batch_size']}, padded prefill (before)", fmt(padded["tokens_per_s"], 1),
                     fmt(padded["seconds"], 1), fmt(padded["tokens_per_s"] / section["single"]["tokens_per_s"], 2),
                     f"{100 * padded['identical_share']:.0f}%"])
    return markdown_table(["generation", "answer tokens/s", "seconds", "speed-up", "identical greedy answers"], rows)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompts", type=int, default=32, help="eval prompts (default 32)")
    p.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=[8, 16, 32],
                   help="comma-separated batch sizes (default 8,16,32)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="answer length cap (default 64)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--data", help="dataset folder (default: build configs/data/default.yaml into a temp folder)")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    section = run(args)
    print(table(section))


if __name__ == "__main__":
    main()
