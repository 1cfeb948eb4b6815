"""llama.cpp work (scoring, tokenising, rendering chat templates, generating answers) in a child process.

The parent writes a request file, runs ``python -m personaforge.llama_worker REQUEST RESULT`` and reads
the result file; llama.cpp's own log and, after a crash, the child's Python stack (faulthandler) go to a log file.
A child that dies by a signal becomes a `NativeCrash` in the parent (see native.py).

`repack` is llama.cpp's default load: weights repacked into the CPU backend's "extra buffer types" (AMX, and
the interleaved layouts for AVX2/AVX-512/NEON), which is how Ollama, llama-server and LM Studio run a file.
`repack=False` loads plain CPU buffers (llama.cpp's `--no-repack`): other kernels, the same numbers up to rounding.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.native import SIGNAL_HINTS, child_env, died_by_signal, run_child, signal_name

LLAMA_CPP_MISSING = "llama-cpp-python is not installed (pip install 'personaforge[llama]', a 10-minute source build)"


class LlamaFailed(Exception):
    """llama.cpp refused the job (bad file, failed load) without crashing."""


@dataclass
class LlamaJob:
    """What one child does: load `model` once, then run `ops` in order."""

    model: Path
    n_ctx: int = 64
    repack: bool = True
    vocab_only: bool = False
    threads: int = 1
    logits_all: bool = True  # every position's logits (scoring); generation needs only the last one
    n_gpu_layers: int = 0
    ops: list[dict] = field(default_factory=list)

    def score(self, input_ids: list[int], positions: list[int]) -> None:
        """Teacher-forced: log-probability of input_ids[p + 1] and the top-1 token, at each position p."""
        self.ops.append({"op": "score", "input_ids": list(map(int, input_ids)), "positions": list(map(int, positions))})

    def chat_tokens(self, messages: list[dict], template_name: str | None = None) -> None:
        """The GGUF's chat template (its named template `template_name` when it has one) rendered as
        llama-cpp-python's chat completion renders it, then tokenised."""
        self.ops.append({"op": "chat_tokens", "messages": messages, "template_name": template_name})

    def tokenize(self, text: str, add_bos: bool = True, special: bool = True) -> None:
        self.ops.append({"op": "tokenize", "text": text, "add_bos": add_bos, "special": special})

    def generate(self, prompts: list[str], *, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 top_k: int = 50, seed: int = 0, repetition_penalty: float = 1.0,
                 repetition_penalty_scope: str = "answer", end_rule: str = "likelier_than_not",
                 stop: list[str] | None = None, add_bos: bool = True) -> None:
        """One answer per prompt, decoded the way personaforge.generate decodes with transformers: the repetition
        penalty over the answer's tokens (or prompt and answer), then, greedy, the end rule; sampling applies
        temperature, top-k and top-p, seeded per prompt. Each answer is cut at its first stop string."""
        self.ops.append({"op": "generate", "prompts": list(prompts), "max_new_tokens": int(max_new_tokens),
                         "temperature": float(temperature), "top_p": float(top_p), "top_k": int(top_k),
                         "seed": int(seed), "repetition_penalty": float(repetition_penalty),
                         "repetition_penalty_scope": repetition_penalty_scope, "end_rule": end_rule,
                         "stop": list(stop or []), "add_bos": bool(add_bos)})

    def to_json(self) -> dict:
        return {"model": str(self.model), "n_ctx": self.n_ctx, "repack": self.repack, "vocab_only": self.vocab_only,
                "threads": self.threads, "logits_all": self.logits_all, "n_gpu_layers": self.n_gpu_layers,
                "ops": self.ops}


@functools.lru_cache(maxsize=None)
def llama_cpp_problem() -> str | None:
    """None when llama-cpp-python imports cleanly, else why it cannot be used.

    Checked in a child: importing loads llama.cpp's shared libraries, and a build compiled for another CPU (pip
    reuses a wheel it built elsewhere with -march=native from its cache) can die by SIGILL right there.
    """
    try:
        result = subprocess.run([sys.executable, "-c", "import llama_cpp"], capture_output=True, text=True,
                                env=child_env(), check=False, timeout=120)
    except subprocess.TimeoutExpired:
        return "importing llama-cpp-python did not finish in 120 s"
    signum = died_by_signal(result.returncode)
    if signum is not None:
        name = signal_name(signum)
        return (f"llama-cpp-python crashes on import with {name} ({SIGNAL_HINTS.get(name, 'killed by a signal')});"
                " rebuild it on this machine: pip install --no-cache-dir --force-reinstall llama-cpp-python")
    return None if result.returncode == 0 else LLAMA_CPP_MISSING


def run_job(job: LlamaJob, work: Path, log_file: Path, what: str) -> dict:
    """Run the job in a child: {"results": [...], "system_info": str}; NativeCrash or LlamaFailed otherwise."""
    work.mkdir(parents=True, exist_ok=True)
    request, result = work / "llama-request.json", work / "llama-result.json"
    result.unlink(missing_ok=True)
    request.write_text(json.dumps(job.to_json()), encoding="utf-8")
    completed = run_child([sys.executable, "-m", "personaforge.llama_worker", str(request), str(result)],
                          what, log_file)
    answer = json.loads(result.read_text(encoding="utf-8")) if result.is_file() else {}
    if completed.returncode != 0 or "results" not in answer:
        reason = answer.get("error") or _last_line(log_file) or f"exit status {completed.returncode}"
        raise LlamaFailed(f"{what} failed: {reason}")
    return answer


def _last_line(log_file: Path) -> str:
    lines = [line.strip() for line in log_file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ------------------------------------------------------------------------------------------------- the child
def disable_weight_repacking() -> None:
    """llama.cpp's `--no-repack` for llama-cpp-python, which has no setting for it (its AMX kernels for repacked
    weights crash: personaforge.native). Llama() builds its model params from llama_model_default_params(); a
    process that loads one model only can turn the extra buffer types off there. Also used by the tests' server."""
    import llama_cpp.llama_cpp as native

    default_params = native.llama_model_default_params

    def without_repack():
        params = default_params()
        params.use_extra_bufts = False
        return params

    native.llama_model_default_params = without_repack


def _open(request: dict):
    import llama_cpp

    if not request["repack"]:
        disable_weight_repacking()
    threads = int(request["threads"])
    n_ctx = max(int(request["n_ctx"]), 64)
    logits_all = bool(request.get("logits_all", True)) and not request["vocab_only"]
    return llama_cpp.Llama(model_path=request["model"], n_ctx=n_ctx, n_batch=n_ctx, logits_all=logits_all,
                           vocab_only=bool(request["vocab_only"]), verbose=False, n_threads=threads,
                           n_threads_batch=threads, n_gpu_layers=int(request.get("n_gpu_layers", 0)))


def _score(llm, op: dict) -> dict:
    import numpy as np

    ids, positions = op["input_ids"], np.asarray(op["positions"], dtype=np.int64)
    llm.reset()
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float64)[positions]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logprobs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    targets = np.asarray(ids, dtype=np.int64)[positions + 1]
    return {"logprobs": logprobs[np.arange(len(positions)), targets].tolist(), "top1": logits.argmax(-1).tolist()}


def _chat_tokens(llm, op: dict) -> list[int]:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    model = llm._model
    eos = model.token_get_text(llm.token_eos()) if llm.token_eos() != -1 else ""
    bos = model.token_get_text(llm.token_bos()) if llm.token_bos() != -1 else ""
    named = llm.metadata.get(f"tokenizer.chat_template.{op['template_name']}") if op["template_name"] else None
    formatter = Jinja2ChatFormatter(template=named or llm.metadata["tokenizer.chat_template"], eos_token=eos,
                                    bos_token=bos)
    rendered = formatter(messages=op["messages"])
    return llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)


def _cut_at_stop(text: str, stops: list[str]) -> str:
    cut = min([i for i in (text.find(stop) for stop in stops) if i >= 0], default=len(text))
    return text[:cut].strip()


def _next_token(logits, op: dict, seen, end_ids, rng) -> int:
    """personaforge.generate's choice of the next token, in numpy: penalty → end rule (greedy) → argmax, or
    penalty → temperature → top-k → top-p → a seeded draw."""
    import numpy as np

    penalty = op["repetition_penalty"]
    if penalty != 1.0 and len(seen):
        ids = np.unique(np.asarray(seen, dtype=np.int64))
        values = logits[ids]
        logits[ids] = np.where(values < 0, values * penalty, values / penalty)
    if op["temperature"] == 0:
        if op["end_rule"] == "likelier_than_not" and len(end_ids):
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            if probs[end_ids].sum() < 0.5:
                logits[end_ids] = -np.inf
        return int(np.argmax(logits))
    logits = logits / op["temperature"]
    if 0 < op["top_k"] < len(logits):
        kth = np.partition(logits, -op["top_k"])[-op["top_k"]]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    if op["top_p"] < 1.0:
        order = np.argsort(-probs, kind="stable")
        cumulative = np.cumsum(probs[order])
        keep = order[: int(np.searchsorted(cumulative, op["top_p"])) + 1]
        kept = np.zeros_like(probs)
        kept[keep] = probs[keep]
        probs = kept / kept.sum()
    return int(rng.choice(len(probs), p=probs))


def _generate(llm, op: dict) -> dict:
    """{"answers": [text per prompt], "tokens": [generated ids per prompt], "end_ids": [the ids that end an answer:
    llama.cpp's end-of-generation tokens]}."""
    import llama_cpp
    import numpy as np

    n_vocab = llm.n_vocab()
    vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
    end_ids = np.asarray([t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)], dtype=np.int64)
    answers, generated_ids = [], []
    for index, prompt in enumerate(op["prompts"]):
        rng = np.random.default_rng(op["seed"] + index)
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=op["add_bos"], special=True)
        llm.reset()
        llm.eval(tokens)
        generated: list[int] = []
        text = ""
        while len(generated) < op["max_new_tokens"] and llm.n_tokens < llm.n_ctx():
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)
            seen = generated if op["repetition_penalty_scope"] == "answer" else tokens + generated
            token = _next_token(logits, op, seen, end_ids, rng)
            if token in end_ids:
                break
            generated.append(token)
            text = llm.detokenize(generated).decode("utf-8", errors="replace")
            if any(stop in text for stop in op["stop"]):
                break
            llm.eval([token])
        answers.append(_cut_at_stop(text, op["stop"]))
        generated_ids.append(generated)
    return {"answers": answers, "tokens": generated_ids, "end_ids": end_ids.tolist()}


def _run(request: dict) -> dict:
    import llama_cpp

    llm = _open(request)
    results: list = []
    try:
        for op in request["ops"]:
            if op["op"] == "score":
                results.append(_score(llm, op))
            elif op["op"] == "chat_tokens":
                results.append(_chat_tokens(llm, op))
            elif op["op"] == "generate":
                results.append(_generate(llm, op))
            elif op["op"] == "tokenize":
                results.append(llm.tokenize(op["text"].encode("utf-8"), add_bos=op["add_bos"], special=op["special"]))
            else:
                raise ValueError(f"unknown op {op['op']!r}")
    finally:
        llm.close()
    info = llama_cpp.llama_print_system_info()
    return {"results": results, "system_info": info.decode() if isinstance(info, bytes) else str(info)}


def main(argv: list[str]) -> int:
    request_file, result_file = Path(argv[0]), Path(argv[1])
    request = json.loads(request_file.read_text(encoding="utf-8"))
    try:
        answer = _run(request)
        code = 0
    except Exception as exc:  # noqa: BLE001 - any failure is reported to the parent as one line
        answer, code = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}, 1
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(answer), encoding="utf-8")
    os.replace(tmp, result_file)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
