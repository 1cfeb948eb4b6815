"""`persona data validate`: one FILE:LINE problem per line for a JSONL training file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import JSONL_TEXT, decode_text, display_path, jsonl_lines, read_bytes

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
    text = decode_text(read_bytes(path), source, JSONL_TEXT).text
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
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
