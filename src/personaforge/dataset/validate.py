"""`persona data validate`: one FILE:LINE problem per line for a JSONL training file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import decode_text, display_path, read_bytes

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


def _texts(row: dict) -> tuple[str, str] | None:
    """(prompt text, completion text) for length and duplicate checks."""
    if "prompt" in row and "completion" in row:
        return row["prompt"], row["completion"]
    messages = row["messages"]
    return "\n".join(m["content"] for m in messages[:-1]), messages[-1]["content"]


def validate_file(path: Path, count_tokens: Callable[[str], int] | None = None,
                  max_length: int | None = None) -> tuple[list[str], int]:
    """Return (problems, records checked). Files may hold prompt/completion, messages, or both."""
    source = display_path(path)
    text = decode_text(read_bytes(path), source).text
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    records = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        records += 1
        where = f"{source}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: expected a JSON object, got {type(row).__name__}")
            continue
        has_plain = "prompt" in row or "completion" in row
        if not has_plain and "messages" not in row:
            problems.append(f"{where}: missing fields: needs 'prompt' and 'completion', or 'messages'")
            continue
        if has_plain:
            missing = [k for k in ("prompt", "completion") if k not in row]
            if missing:
                problems.append(f"{where}: missing field '{missing[0]}'")
                continue
            if not isinstance(row["prompt"], str) or not isinstance(row["completion"], str):
                problems.append(f"{where}: 'prompt' and 'completion' must be strings")
                continue
            if not row["completion"].strip():
                problems.append(f"{where}: empty completion")
                continue
            if not row["prompt"].strip():
                problems.append(f"{where}: empty prompt")
                continue
        if "messages" in row:
            problem = _messages_problem(row["messages"])
            if problem:
                problems.append(f"{where}: {problem}")
                continue
        prompt, completion = _texts(row)
        key = (prompt, completion)
        if key in seen:
            problems.append(f"{where}: duplicate of line {seen[key]}")
            continue
        seen[key] = line_no
        if count_tokens is not None and max_length is not None:
            total = count_tokens(prompt + completion) + 1  # + EOS, which training appends
            if total > max_length:
                problems.append(f"{where}: {total} tokens > max_length {max_length}; the completion would be cut")
    if records == 0:
        problems.append(f"{source}:1: no records (the file is empty)")
    return problems, records


def tokenizer_counter(model: str) -> Callable[[str], int]:
    """Token counts from a tokenizer in a local folder or on the hub."""
    try:
        from transformers import AutoTokenizer
    except ImportError:  # pragma: no cover - transformers is a declared dependency
        raise PersonaForgeError("--model needs the 'transformers' package; pip install transformers") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # noqa: BLE001 - transformers raises many types for "cannot load"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PersonaForgeError(
            f"--model '{model}': cannot load its tokenizer ({reason[:160]}); give a local model folder or a reachable hub id"
        ) from None
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])
