"""`persona data validate`: one FILE:LINE problem per line for JSONL record files, and, given an eval set, the
cross-split leakage check `persona data build` runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import JSONL_TEXT, decode_text, display_path, iter_jsonl, jsonl_lines, read_bytes

ROLES = {"system", "user", "assistant"}


def _messages_problem(messages: object) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return f"messages[{index}] needs a string 'content'"
        if message.get("role") not in ROLES:
            return f"messages[{index}] has role {message.get('role')!r}; use system, user or assistant"
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer"
    if not messages[-1]["content"].strip():
        return "empty completion (the assistant's answer is empty)"
    if not any(m["role"] == "user" for m in messages):
        return "no user message before the answer"
    return None


def record_problem(row: object) -> str | None:
    """What is wrong with one parsed JSONL line as a training record, or None. Training refuses what this flags."""
    if not isinstance(row, dict):
        return f"expected a JSON object, got {type(row).__name__}"
    has_plain = "prompt" in row or "completion" in row
    if not has_plain and "messages" not in row:
        return "missing fields: needs 'prompt' and 'completion', or 'messages'"
    if has_plain:
        missing = [k for k in ("prompt", "completion") if k not in row]
        if missing:
            return f"missing field '{missing[0]}'"
        if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
            return "'prompt' and 'completion' must be strings"
        if not row["completion"].strip():
            return "empty completion"
        if not row["prompt"].strip():
            return "empty prompt"
    if "messages" in row:
        problem = _messages_problem(row["messages"])
        if problem:
            return problem
    # Metadata the tool groups and counts by: a list or number there would break those steps later.
    for key in ("persona", "type", "segment"):
        if row.get(key) is not None and not isinstance(row[key], str):
            return f"'{key}' must be a string, got {type(row[key]).__name__}"
    if row.get("id") is not None and (isinstance(row["id"], bool) or not isinstance(row["id"], (str, int))):
        return f"'id' must be a string or a number, got {type(row['id']).__name__}"
    return None


def read_records(path: Path) -> tuple[list[dict], str]:
    """Training records from a .jsonl file, and the file's sha256; each must pass `persona data validate`'s checks."""
    source = display_path(path)
    data = read_bytes(path)
    rows = []
    for number, row in iter_jsonl(decode_text(data, source, JSONL_TEXT).text, source,
                                 f"run persona data validate {source}"):
        problem = record_problem(row)
        if problem:
            raise PersonaForgeError(f"{source}:{number}: {problem}; run persona data validate {source}")
        rows.append(row)
    return rows, hashlib.sha256(data).hexdigest()


def _texts(row: dict) -> tuple[str, str] | None:
    """(prompt text, completion text) for length and duplicate checks."""
    if "prompt" in row and "completion" in row:
        return row["prompt"], row["completion"]
    messages = row["messages"]
    return "\n".join(m["content"] for m in messages[:-1]), messages[-1]["content"]


def validate_file(path: Path, count_tokens: Callable[[str], int] | None = None,
                  max_length: int | None = None, seen: dict[tuple[str, str], str] | None = None,
                  answers: list[tuple[str, str]] | None = None) -> tuple[list[str], int]:
    """Return (problems, records checked). Files may hold prompt/completion, messages, or both.

    ``seen`` carries (prompt, completion) → FILE:LINE across files, so a duplicate in another file is found too;
    ``answers`` collects (FILE:LINE, answer text) of the good records, for the leakage check.
    """
    source = display_path(path)
    text = decode_text(read_bytes(path), source, JSONL_TEXT).text
    problems: list[str] = []
    seen = {} if seen is None else seen
    records = 0
    for line_no, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        records += 1
        where = f"{source}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        except (ValueError, RecursionError):  # integers past Python's digit limit, absurd nesting
            problems.append(f"{where}: invalid JSON (a number too large or nesting too deep)")
            continue
        problem = record_problem(row)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        prompt, completion = _texts(row)
        key = (prompt, completion)
        if key in seen:
            first = seen[key]
            same_file = first.rpartition(":")[0] == source
            problems.append(f"{where}: duplicate of {'line ' + first.rpartition(':')[2] if same_file else first}")
            continue
        seen[key] = where
        if answers is not None:
            answers.append((where, completion))
        if count_tokens is not None and max_length is not None:
            total = count_tokens(prompt + completion) + 1  # + EOS, which training appends
            if total > max_length:
                problems.append(f"{where}: {total} tokens > max_length {max_length}; the completion would be cut")
    if records == 0:
        problems.append(f"{source}:1: no records (the file is empty)")
    return problems, records


def tokenizer_counter(model: str) -> Callable[[str], int]:
    """Token counts from a tokenizer: a local folder (tokenizer files suffice), gguf:PATH, pkg:NAME or a hub id.

    Anything but a folder goes through personaforge.models, so a path that does not exist is refused at once
    instead of being looked up on the hub (minutes of retries offline).
    """
    from transformers import AutoTokenizer

    from personaforge.models import load_tokenizer, resolve_source

    try:
        if Path(model).expanduser().is_dir():
            tokenizer = AutoTokenizer.from_pretrained(Path(model).expanduser())
        else:
            tokenizer = load_tokenizer(resolve_source(model))
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for "cannot load"
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise PersonaForgeError(f"--model '{model}': cannot load its tokenizer ({reason[:300]}); give a local model"
                                " folder or a reachable hub id") from None
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])


def record_files(path: Path, what: str) -> list[Path]:
    """A .jsonl file, or the .jsonl files directly inside a folder (the original pipeline's batch_*.jsonl), sorted."""
    if path.is_dir():
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if not files:
            raise PersonaForgeError(f"{what} {display_path(path)}: no .jsonl files in this folder; give a .jsonl file or a"
                                    " folder of them")
        return files
    if not path.exists():
        raise PersonaForgeError(f"{what} {display_path(path)}: file not found; give a .jsonl file or a folder of them")
    return [path]


@dataclass
class Validation:
    problems: list[str] = field(default_factory=list)
    train_records: int = 0
    eval_records: int = 0
    leaks: list = field(default_factory=list)  # dataset.leakage.Leak over the limit, longest first
    shared: list[int] = field(default_factory=list)  # per eval answer: longest run shared with any train answer
    limit: int = 8


def validate_paths(train: Path, evaluation: Path | None = None, count_tokens: Callable[[str], int] | None = None,
                   max_length: int | None = None, max_leak_ngram: int = 8) -> Validation:
    """Every record of TRAIN (and EVAL) checked; with EVAL, each eval answer's longest word run shared with a
    training answer, as `persona data build` measures it, and the pairs over ``max_leak_ngram`` words."""
    from personaforge.dataset.leakage import find_leaks

    result = Validation(limit=max_leak_ngram)
    train_files = record_files(train, "TRAIN")
    eval_files = record_files(evaluation, "--eval") if evaluation is not None else []
    overlap = {p.resolve() for p in train_files} & {p.resolve() for p in eval_files}
    if overlap:
        raise PersonaForgeError(f"--eval {display_path(evaluation)}: {display_path(sorted(overlap)[0])} is also part of"
                                " TRAIN; give the eval records apart from the training ones")
    train_answers: list[tuple[str, str]] = []
    eval_answers: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], str] = {}
    for path in train_files:
        problems, count = validate_file(path, count_tokens, max_length, seen, train_answers)
        result.problems += problems
        result.train_records += count
    seen_eval: dict[tuple[str, str], str] = {}
    for path in eval_files:
        problems, count = validate_file(path, count_tokens, max_length, seen_eval, eval_answers)
        result.problems += problems
        result.eval_records += count
    if eval_files:
        leaks = find_leaks(eval_answers, train_answers)
        longest = {leak.eval_id: leak.length for leak in leaks}
        result.shared = [longest.get(where, 0) for where, _ in eval_answers]
        result.leaks = [leak for leak in leaks if leak.length > max_leak_ngram]
    return result
