"""Teacher-forced parity between the merged model and an exported GGUF file.

Greedy text is a poor check: near-tied logits flip under harmless rounding (measured here: SmolLM2's first
answer token led the runner-up by 0.08 logits and q8_0 in llama.cpp picked the runner-up). So we feed the
exact training token ids of a few eval records to both models and compare, on every answer token, the
log-probability of the true token and the top-1 prediction. The file is scored with transformers (which
dequantises it) and, when `llama-cpp-python` is importable, with llama.cpp — the runtime Ollama, LM Studio and
llama-server are built on. With llama.cpp we also check that rendering a conversation from the GGUF's chat
template and tokenising it gives the training prompt ids.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from personaforge.export.llama_worker import LLAMA_CPP_MISSING, LlamaFailed, LlamaJob, llama_cpp_problem, run_job
from personaforge.export.native import NativeCrash
from personaforge.fileio import display_path
from personaforge.prompting import Conversation, PromptFormat, chat_messages, conversation_from_record
from personaforge.train.run import Run
from personaforge.train.tokenize import IGNORE, Example, tokenize_records

Log = Callable[[str], None]

# (minimum top-1 agreement, largest |perplexity ratio - 1|) per GGUF type. f16/bf16/f32 and q8_0 are the
# issue's acceptance thresholds; the llama-quantize types are looser guesses, not measured on this machine.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "f32": (0.99, 0.01), "f16": (0.99, 0.01), "bf16": (0.99, 0.02), "q8_0": (0.95, 0.03),
    "Q6_K": (0.90, 0.05), "Q5_K_M": (0.90, 0.05), "Q5_K_S": (0.90, 0.05), "Q5_0": (0.90, 0.05), "Q5_1": (0.90, 0.05),
    "Q4_K_M": (0.85, 0.10), "Q4_K_S": (0.85, 0.10), "Q4_0": (0.85, 0.10), "Q4_1": (0.85, 0.10),
    "Q3_K_L": (0.75, 0.25), "Q3_K_M": (0.75, 0.25), "Q3_K_S": (0.75, 0.25), "Q2_K": (0.60, 0.50),
}


@dataclass
class Scores:
    """Per answer token: log-probability of the true next token, and the model's top-1 token."""

    logprobs: np.ndarray
    top1: np.ndarray


def parity_records(run: Run, count: int) -> list[dict]:
    """A handful of eval records (train records when the run has no eval split), stratified by persona."""
    from personaforge.evaluate.runner import stratified_subset
    from personaforge.train.data import load_dataset_dir

    dataset = load_dataset_dir(run.train_config().data)
    return stratified_subset(dataset.eval or dataset.train, count, seed=0)


def training_examples(records: list[dict], fmt: PromptFormat, tokenizer, max_length: int) -> list[Example]:
    """The exact token ids and answer labels training used for these records."""
    examples, _ = tokenize_records(records, fmt, tokenizer, max_length)
    return examples


def _answer_positions(example: Example) -> np.ndarray:
    # Position t predicts token t+1; score the positions whose next token is an answer (label) token.
    labels = np.asarray(example.labels)
    return np.nonzero(labels[1:] != IGNORE)[0]


def _scores_from_logits(logits: torch.Tensor, example: Example) -> Scores:
    positions = _answer_positions(example)
    ids = torch.tensor(example.input_ids)
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    index = torch.from_numpy(positions)
    target = ids[index + 1]
    return Scores(logprobs[index, target].numpy().astype(np.float64), logits[index].argmax(-1).numpy())


def _concat(parts: list[Scores]) -> Scores:
    return Scores(np.concatenate([p.logprobs for p in parts]), np.concatenate([p.top1 for p in parts]))


def score_torch_model(model, examples: list[Example]) -> Scores:
    device = next(model.parameters()).device
    parts = []
    with torch.no_grad():
        for example in examples:
            logits = model(input_ids=torch.tensor([example.input_ids], device=device)).logits[0].float().cpu()
            parts.append(_scores_from_logits(logits, example))
    return _concat(parts)


def score_merged(merged: Path, examples: list[Example]) -> Scores:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(merged, dtype="auto")
    model.eval()
    try:
        return score_torch_model(model, examples)
    finally:
        del model


def score_gguf_transformers(path: Path, examples: list[Example]) -> Scores:
    from transformers import AutoModelForCausalLM

    from personaforge.models.fetch import _allow_bundled_gguf

    _allow_bundled_gguf()
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    gguf_utils.tqdm = lambda iterable, **_: iterable  # its per-tensor bar ignores disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    model.eval()
    try:
        return score_torch_model(model, examples)
    finally:
        del model


def llama_cpp_available() -> bool:
    return llama_cpp_problem() is None


def compare(reference: Scores, exported: Scores, quant: str) -> dict:
    """mean |Δ log-prob|, top-1 agreement and perplexity ratio on the answer tokens, with the verdict."""
    min_top1, max_ppl_dev = THRESHOLDS[quant]
    ppl_ref = math.exp(-float(reference.logprobs.mean()))
    ppl_exp = math.exp(-float(exported.logprobs.mean()))
    ratio = ppl_exp / ppl_ref
    top1 = float((reference.top1 == exported.top1).mean())
    passed = top1 >= min_top1 and abs(ratio - 1) <= max_ppl_dev
    return {"tokens": int(reference.logprobs.size),
            "mean_abs_dlogprob": float(np.abs(reference.logprobs - exported.logprobs).mean()),
            "max_abs_dlogprob": float(np.abs(reference.logprobs - exported.logprobs).max()),
            "top1_agreement": top1, "ppl_reference": ppl_ref, "ppl_export": ppl_exp, "ppl_ratio": ratio,
            "passed": passed}


# ------------------------------------------------------------------------------------------------- llama.cpp
def llama_threads() -> int:
    return max(1, min(os.cpu_count() or 1, torch.get_num_threads()))


def llama_cpp_job(path: Path, examples: list[Example], conversations: list[Conversation], repack: bool) -> LlamaJob:
    """Score every example teacher-forced, then render each conversation from the GGUF's template."""
    from personaforge.export.formats import template_name
    from personaforge.run_personas import RunPersona

    job = LlamaJob(path, n_ctx=max(len(e.input_ids) for e in examples) + 8, repack=repack, threads=llama_threads())
    for example in examples:
        job.score(example.input_ids, _answer_positions(example).tolist())
    for conversation in conversations:
        # Plain runs with several personas: each persona has its own named template.
        job.chat_tokens(chat_messages(conversation.system, conversation.question, conversation.history),
                        template_name(RunPersona(conversation.name, "")))
    return job


def run_llama_cpp(make_job: Callable[[bool], LlamaJob], work: Path, log_file: Path, log: Log) -> tuple[dict | None, dict]:
    """llama.cpp's default load first (weights repacked, as Ollama and llama-server run the file); if that
    crashes, once more without repacking (llama.cpp's --no-repack), since the check compares numbers, not kernels.

    Returns (the child's answer or None when every attempt crashed, what happened: parity.json's "load").
    """
    attempts: list[dict] = []
    for repack in (True, False):
        attempt_log = log_file if repack else log_file.with_name(log_file.stem + ".no-repack.log")
        try:
            answer = run_job(make_job(repack), work, attempt_log, "llama.cpp")
        except NativeCrash as crash:
            attempts.append({"repack": repack, "crashed": crash.signal, "log": attempt_log.name})
            if repack:
                log(f"warning: {crash}; scoring again without weight repacking (llama.cpp's --no-repack)")
            continue
        attempt_log.unlink(missing_ok=True)  # nothing worth keeping when it worked
        attempts.append({"repack": repack, "crashed": None})
        return answer, {"repack": repack, "attempts": attempts, "system_info": answer.get("system_info", "")}
    return None, {"repack": None, "attempts": attempts}


def llama_cpp_report(reference: Scores, examples: list[Example], chosen: list[dict], fmt: PromptFormat, tokenizer,
                     quant: str, path: Path, name: str, log_dir: Path, work: Path, log: Log) -> tuple[dict, dict]:
    """parity.json's "llama.cpp" backend entry and its "prompt_tokens" entry, scored in a child process."""
    conversations = [c for r in chosen if (c := conversation_from_record(r)) is not None]
    log_file = log_dir / f"{Path(name).stem}.llama-cpp.log"
    try:
        answer, load = run_llama_cpp(lambda repack: llama_cpp_job(path, examples, conversations, repack), work,
                                     log_file, log)
    except LlamaFailed as failed:
        return {"error": str(failed), "passed": False}, {"skipped": "llama.cpp could not load the file"}
    if answer is None:
        crashed = load["attempts"][-1]["crashed"]
        return ({"crashed": f"llama.cpp crashed with {crashed} scoring {name}, with and without weight repacking"
                            f" (its output: {display_path(log_file)}); try another --quant, or report it to llama.cpp"
                            " with that log", "passed": False, "load": load}, {"skipped": "llama.cpp crashed"})
    results = answer["results"]
    scores = _concat([Scores(np.asarray(r["logprobs"], dtype=np.float64), np.asarray(r["top1"]))
                      for r in results[: len(examples)]])
    figures = compare(reference, scores, quant)
    figures["load"] = load
    if load["repack"] is False:
        figures["note"] = ("llama.cpp's default load (weights repacked for this CPU) crashed; scored without repacking."
                           " Runtimes that repack (Ollama, llama-server) may crash on this CPU: see the README")
    if not conversations:
        return figures, {"skipped": "the eval records have no messages to render"}
    return figures, check_prompt_tokens(results[len(examples):], conversations, fmt, tokenizer)


def check_prompt_tokens(rendered: list[list[int]], conversations: list[Conversation], fmt: PromptFormat,
                        tokenizer) -> dict:
    """Training prompt ids vs llama.cpp's rendering of the same conversations from the GGUF's template."""
    from personaforge.train.tokenize import _prompt_ids

    mismatches = []
    for got, conversation in zip(rendered, conversations):
        prompt, _ = fmt.render(conversation, tokenizer)
        expected = _prompt_ids(fmt, tokenizer, prompt)
        if got != expected:
            first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            mismatches.append({"question": conversation.question[:80], "first_difference": first,
                               "training": expected[max(0, first - 3): first + 5],
                               "llama_cpp": got[max(0, first - 3): first + 5]})
    return {"checked": len(conversations), "identical": not mismatches, "mismatches": mismatches[:3]}


# ------------------------------------------------------------------------------------------------------ driver
def check_parity(run: Run, merged: Path, path: Path, quant, fmt: PromptFormat, log: Log, records: int = 8,
                 name: str | None = None, log_dir: Path | None = None) -> dict:
    """Score the eval answers under the merged model and the exported file; the report parity.json holds."""
    from transformers import AutoTokenizer

    from personaforge.models import quiet_transformers

    quiet_transformers()
    name = name or path.name
    tokenizer = AutoTokenizer.from_pretrained(merged)
    chosen = parity_records(run, records)
    examples = training_examples(chosen, fmt, tokenizer, run.train_config().data.max_length)
    if not examples:
        return {"file": name, "quant": quant.name, "records": 0, "backends": {}, "passed": False,
                "error": "no eval record fits max_length"}
    min_top1, max_dev = THRESHOLDS[quant.name]
    report: dict = {"file": name, "quant": quant.name, "records": len(examples),
                    "answer_tokens": int(sum(len(_answer_positions(e)) for e in examples)),
                    "thresholds": {"min_top1_agreement": min_top1, "max_ppl_ratio_deviation": max_dev},
                    "backends": {}}
    log(f"parity check: scoring {len(examples)} eval answers ({report['answer_tokens']} tokens) teacher-forced")
    reference = score_merged(merged, examples)
    try:
        report["backends"]["transformers"] = compare(reference, score_gguf_transformers(path, examples), quant.name)
    except (ValueError, KeyError, NotImplementedError, RuntimeError, OSError) as exc:  # e.g. an architecture it cannot read
        report["backends"]["transformers"] = {"error": f"transformers cannot read this GGUF: {str(exc).splitlines()[0]}"}
    if llama_cpp_available():
        work = Path(tempfile.mkdtemp(prefix=".llama-", dir=path.parent))
        try:
            report["backends"]["llama.cpp"], report["prompt_tokens"] = llama_cpp_report(
                reference, examples, chosen, fmt, tokenizer, quant.name, path, name, log_dir or path.parent, work, log)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        problem = llama_cpp_problem()
        if problem != LLAMA_CPP_MISSING:  # installed but unusable: say so, never skip silently
            log(f"warning: {problem}; the llama.cpp checks are skipped")
        report["backends"]["llama.cpp"] = {"skipped": problem}
        report["prompt_tokens"] = {"skipped": problem}
    scored = [b for b in report["backends"].values() if "passed" in b]
    crashed = [b for b in report["backends"].values() if "crashed" in b]
    report["passed"] = (bool(scored) and not crashed and all(b["passed"] for b in scored)
                        and report.get("prompt_tokens", {}).get("identical", True))
    if not scored:
        report["error"] = "no backend could read the exported file"
    return report
