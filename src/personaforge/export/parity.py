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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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
LLAMA_CPP_MISSING = "llama-cpp-python is not installed (pip install 'personaforge[llama]', a 10-minute source build)"


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

    from personaforge.models import _allow_bundled_gguf

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
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


def open_llama(path: Path, n_ctx: int):
    from llama_cpp import Llama

    threads = max(1, min(os.cpu_count() or 1, torch.get_num_threads()))
    return Llama(model_path=str(path), n_ctx=max(n_ctx, 64), n_batch=max(n_ctx, 64), logits_all=True, verbose=False,
                 n_threads=threads, n_threads_batch=threads)


def score_gguf_llama_cpp(llm, examples: list[Example]) -> Scores:
    parts = []
    for example in examples:
        llm.reset()
        llm.eval(example.input_ids)
        logits = torch.from_numpy(np.array(llm.scores[: len(example.input_ids)], dtype=np.float32))
        parts.append(_scores_from_logits(logits, example))
    return _concat(parts)


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


# ----------------------------------------------------------------------------------------------- prompt tokens
def llama_cpp_chat_tokens(llm, messages: list[dict], template: str | None = None) -> list[int]:
    """What llama-cpp-python's chat completion feeds the model: the GGUF template rendered, then tokenised."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = llm._model
    eos = model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
    bos = model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
    formatter = Jinja2ChatFormatter(template=template or llm.metadata["tokenizer.chat_template"], eos_token=eos,
                                    bos_token=bos)
    result = formatter(messages=messages)
    return llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)


def check_prompt_tokens(llm, conversations: list[Conversation], fmt: PromptFormat, tokenizer) -> dict:
    """Training prompt ids vs llama.cpp's rendering of the same conversation from the GGUF's template."""
    from personaforge.export.formats import template_name
    from personaforge.run_personas import RunPersona
    from personaforge.train.tokenize import _prompt_ids

    mismatches = []
    for conversation in conversations:
        prompt, _ = fmt.render(conversation, tokenizer)
        expected = _prompt_ids(fmt, tokenizer, prompt)
        # Plain runs with several personas: each persona has its own named template.
        named = llm.metadata.get(f"tokenizer.chat_template.{template_name(RunPersona(conversation.name, ''))}")
        got = llama_cpp_chat_tokens(llm, chat_messages(conversation.system, conversation.question,
                                                       conversation.history), named)
        if got != expected:
            first = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
            mismatches.append({"question": conversation.question[:80], "first_difference": first,
                               "training": expected[max(0, first - 3): first + 5],
                               "llama_cpp": got[max(0, first - 3): first + 5]})
    return {"checked": len(conversations), "identical": not mismatches, "mismatches": mismatches[:3]}


# ------------------------------------------------------------------------------------------------------ driver
def check_parity(run: Run, merged: Path, path: Path, quant, fmt: PromptFormat, log: Log, records: int = 8,
                 name: str | None = None) -> dict:
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
        llm = open_llama(path, max(len(e.input_ids) for e in examples) + 8)
        try:
            report["backends"]["llama.cpp"] = compare(reference, score_gguf_llama_cpp(llm, examples), quant.name)
            conversations = [c for r in chosen if (c := conversation_from_record(r)) is not None]
            if conversations:
                report["prompt_tokens"] = check_prompt_tokens(llm, conversations, fmt, tokenizer)
            else:
                report["prompt_tokens"] = {"skipped": "the eval records have no messages to render"}
        finally:
            llm.close() if hasattr(llm, "close") else None
            del llm
    else:
        report["backends"]["llama.cpp"] = {"skipped": LLAMA_CPP_MISSING}
        report["prompt_tokens"] = {"skipped": LLAMA_CPP_MISSING}
    scored = [b for b in report["backends"].values() if "passed" in b]
    report["passed"] = (bool(scored) and all(b["passed"] for b in scored)
                        and report.get("prompt_tokens", {}).get("identical", True))
    if not scored:
        report["error"] = "no backend could read the exported file"
    return report
