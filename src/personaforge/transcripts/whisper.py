"""Whisper / WhisperX JSON: ``{"segments": [{"start", "end", "text", "speaker"?}], ...}``.

Consecutive segments of one speaker merge into a turn. Diarization labels (``SPEAKER_00``) are speakers like any
other; persona cards map them through ``aliases``. A segment without a speaker joins the turn around it when the
speakers before and after agree; otherwise nobody can say whose words they are, so it is reported and left out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from personaforge.errors import PersonaForgeError
from personaforge.transcripts.base import Turn, clean_speech
from personaforge.transcripts.jsonfmt import load_items


@dataclass
class _Segment:
    index: int
    line: int
    speaker: str | None
    text: str
    start: float | None


def looks_like_whisper(text: str) -> bool:
    """An object with a 'segments' list whose items carry 'start' and 'end' (what Whisper and WhisperX write)."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return False
    segments = document.get("segments") if isinstance(document, dict) else None
    return isinstance(segments, list) and any(
        isinstance(s, dict) and "start" in s and "end" in s for s in segments[:50])


def _segment(item: object, where: str, index: int, line: int) -> _Segment | None:
    if not isinstance(item, dict):
        raise PersonaForgeError(f"{where} is not an object with 'start', 'end' and 'text'; fix the file")
    text, speaker, start = item.get("text"), item.get("speaker"), item.get("start")
    if not isinstance(text, str):
        raise PersonaForgeError(f"{where} has no 'text' string; every segment needs its text")
    if speaker is not None and not isinstance(speaker, str):
        raise PersonaForgeError(f"{where}: 'speaker' must be a string like \"SPEAKER_00\"")
    if start is not None:
        if isinstance(start, bool) or not isinstance(start, (int, float)):
            raise PersonaForgeError(f"{where}: 'start' must be a number of seconds")
        try:
            start = float(start)
        except OverflowError:
            start = math.inf
        if not math.isfinite(start) or start < 0:
            raise PersonaForgeError(f"{where}: 'start' must be a finite number of seconds >= 0")
    try:
        (text + (speaker or "")).encode("utf-8")
    except UnicodeEncodeError:
        raise PersonaForgeError(f"{where} contains an invalid character (a lone surrogate); fix the text") from None
    cleaned = clean_speech(text)  # also drops Whisper's leading space
    if not cleaned:
        return None
    return _Segment(index, line, speaker.strip() if speaker and speaker.strip() else None, cleaned, start)


def parse_whisper(text: str, source: str) -> tuple[list[Turn], list[str]]:
    items, lines, key = load_items(text, source)
    path = key or ""
    segments = [s for index, (item, line) in enumerate(zip(items, lines))
                if (s := _segment(item, f"{source}:{line}: {path}[{index}]", index, line))]
    if segments and all(s.speaker is None for s in segments):
        raise PersonaForgeError(f"{source}: no segment has a 'speaker' (Whisper without diarization); run WhisperX"
                                " with --diarize, or add \"speaker\" to each segment")
    labelled = [s for s in segments if s.speaker is not None]
    turns: list[Turn] = []
    left_out: list[_Segment] = []
    position = 0  # index into `labelled` of the next labelled segment
    for segment in segments:
        speaker = segment.speaker
        if speaker is None:
            before = labelled[position - 1].speaker if position else None
            after = labelled[position].speaker if position < len(labelled) else None
            if before is None or before != after:
                left_out.append(segment)
                continue
            speaker = before
        else:
            position += 1
        if turns and turns[-1].speaker == speaker:
            turns[-1].text += " " + segment.text
            turns[-1].end_line = segment.line
        else:
            turns.append(Turn(speaker=speaker, text=segment.text, start=segment.start, source=source,
                              line=segment.line))
    warnings = []
    if left_out:
        listed = ", ".join(f"{path}[{s.index}] (line {s.line})" for s in left_out[:8])
        more = f" and {len(left_out) - 8} more" if len(left_out) > 8 else ""
        warnings.append(f"{source}: left out {len(left_out)} segment(s) with no 'speaker' between different"
                        f" speakers: {listed}{more}; add their speaker to keep them")
    return turns, warnings
