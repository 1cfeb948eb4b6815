"""JSON / JSONL transcripts: a list of {"speaker", "text", "start"?} objects."""

from __future__ import annotations

import json
import math
import re

from personaforge.errors import PersonaForgeError
from personaforge.fileio import iter_jsonl
from personaforge.transcripts.base import Turn, clean_speech, parse_time

LIST_KEYS = ("turns", "segments", "utterances", "transcript")


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _turn(item: object, source: str, line: int, position: int) -> Turn | None:
    if not isinstance(item, dict):
        raise PersonaForgeError(f"{source}:{line}: item {position} is not an object with 'speaker' and 'text'")
    for key in ("speaker", "text"):
        if key not in item:
            raise PersonaForgeError(f"{source}:{line}: item {position} has no '{key}'; every item needs speaker and text")
    speaker, text = item["speaker"], item["text"]
    if not isinstance(speaker, str) or not isinstance(text, str):
        raise PersonaForgeError(f"{source}:{line}: item {position}: 'speaker' and 'text' must be strings")
    start = item.get("start")
    if isinstance(start, str):
        parsed = parse_time(start)
        if parsed is None:
            raise PersonaForgeError(f"{source}:{line}: item {position}: cannot read start '{start}' (use seconds or HH:MM:SS)")
        start = parsed
    elif isinstance(start, bool) or (start is not None and not isinstance(start, (int, float))):
        raise PersonaForgeError(f"{source}:{line}: item {position}: 'start' must be seconds or 'HH:MM:SS'")
    if start is not None:
        try:
            start = float(start)
        except OverflowError:
            start = math.inf
        if not math.isfinite(start) or start < 0:
            raise PersonaForgeError(f"{source}:{line}: item {position}: 'start' must be a finite number of seconds >= 0")
    try:
        (speaker + text).encode("utf-8")
    except UnicodeEncodeError:
        raise PersonaForgeError(f"{source}:{line}: item {position} contains an invalid character (a lone surrogate);"
                                " fix the text") from None
    cleaned = clean_speech(text)
    if not cleaned or not speaker.strip():
        return None
    return Turn(speaker=speaker.strip(), text=cleaned, start=start,
                source=source, line=line)


def _item_lines(text: str, array_start: int | None, count: int) -> list[int]:
    """Line where each top-level array item starts; 1 for all when the layout is unusual."""
    if array_start is None:
        return [1] * count
    decoder = json.JSONDecoder()
    lines: list[int] = []
    pos = array_start + 1
    try:
        while len(lines) < count:
            while text[pos] in " \t\r\n,":
                pos += 1
            _, end = decoder.raw_decode(text, pos)
            lines.append(_line_at(text, pos))
            pos = end
    except (json.JSONDecodeError, IndexError):
        return [1] * count
    return lines


def load_items(text: str, source: str) -> tuple[list[object], list[int], str | None]:
    """The list of items of a JSON transcript (top level, or under 'turns'/'segments'/...), each item's line, and
    the key that held the list (None for a top-level list)."""
    decoder = json.JSONDecoder()
    stripped_start = len(text) - len(text.lstrip())
    try:
        document, end = decoder.raw_decode(text, stripped_start)
    except json.JSONDecodeError as exc:
        raise PersonaForgeError(f"{source}:{exc.lineno}: invalid JSON ({exc.msg}); fix the file") from None
    except (ValueError, RecursionError):  # huge integers, absurd nesting
        raise PersonaForgeError(f"{source}:1: invalid JSON (a number too large or nesting too deep); fix the file") from None
    if text[end:].strip():
        raise PersonaForgeError(f"{source}:{_line_at(text, end + len(text[end:]) - len(text[end:].lstrip()))}: invalid"
                                " JSON (extra data after the list); one JSON document per .json file")
    key: str | None = None
    if isinstance(document, dict):
        key = next((k for k in LIST_KEYS if isinstance(document.get(k), list)), None)
        if key is None:
            raise PersonaForgeError(f"{source}:1: expected a list of turns (or an object with a 'turns' list)")
    elif not isinstance(document, list):
        raise PersonaForgeError(f"{source}:1: expected a list of {{speaker, text, start}} objects")
    # Walk the text again to learn where each item starts, so every turn keeps its line.
    values = document if isinstance(document, list) else document[key]
    if key is None:
        array_start: int | None = stripped_start
    else:
        found = re.search(rf'"{re.escape(key)}"\s*:\s*\[', text)
        array_start = found.end() - 1 if found else None
    return values, _item_lines(text, array_start, len(values)), key


def parse_json(text: str, source: str) -> tuple[list[Turn], list[str]]:
    values, lines, _ = load_items(text, source)
    turns = [t for n, (item, line) in enumerate(zip(values, lines), start=1) if (t := _turn(item, source, line, n))]
    return turns, []


def parse_jsonl(text: str, source: str) -> tuple[list[Turn], list[str]]:
    turns: list[Turn] = []
    for line_no, item in iter_jsonl(text, source, "one object per line"):
        turn = _turn(item, source, line_no, line_no)
        if turn:
            turns.append(turn)
    return turns, []
