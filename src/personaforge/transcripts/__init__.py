"""Transcript parsing: one parser per format, auto-detected by extension and content."""

from __future__ import annotations

import re
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import decode_text, display_path, read_bytes
from personaforge.transcripts.base import ONSCREEN, SPEECH, SUBTITLE, Transcript, Turn
from personaforge.transcripts.jsonfmt import parse_json, parse_jsonl
from personaforge.transcripts.otter import parse_label, parse_otter
from personaforge.transcripts.subtitles import TIMING, parse_subtitles
from personaforge.transcripts.tabbed import parse_tabbed

__all__ = ["FORMATS", "EXTENSIONS", "ONSCREEN", "SPEECH", "SUBTITLE", "Transcript", "Turn",
           "detect_format", "discover", "parse_file", "parse_text"]

FORMATS = ("auto", "tab", "otter", "srt", "vtt", "json", "jsonl")
EXTENSIONS = (".txt", ".vtt", ".srt", ".json", ".jsonl")
_TAB_LABEL = re.compile(r"^[^\t\s][^\t]{0,47}\t\S")


def detect_format(text: str, suffix: str) -> str | None:
    """Pick a format from the extension, then from what the content looks like."""
    suffix = suffix.lower()
    if suffix in (".srt", ".vtt", ".json", ".jsonl"):
        return suffix[1:]
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return "vtt"
    if suffix != ".txt" and head[:1] in "[{":
        return "jsonl" if head.startswith("{") and "\n{" in head else "json"
    lines = text.splitlines()
    if suffix != ".txt" and any(TIMING.match(line) for line in lines[:20]):
        return "srt"
    # Tab evidence: "Name<TAB>text" lines and tab-indented paragraphs (the "name alone, then tabbed text" form).
    tab_votes = sum(1 for line in lines if _TAB_LABEL.match(line) or (line.startswith("\t") and line.strip()))
    otter_votes = sum(1 for line in lines if parse_label(line))
    if tab_votes == 0 and otter_votes == 0:
        return None
    return "tab" if tab_votes >= otter_votes else "otter"


def parse_text(text: str, source: str, fmt: str = "auto", suffix: str = ".txt",
               known_speakers: set[str] | None = None, encoding: str = "utf-8") -> Transcript:
    if not text.strip():
        raise PersonaForgeError(f"{source}: the transcript is empty; remove it or add its text")
    if fmt == "auto":
        detected = detect_format(text, suffix)
        if detected is None:
            raise PersonaForgeError(
                f"{source}: unknown transcript format (no 'Name<TAB>text' or 'Name  MM:SS' lines, not SRT/VTT/JSON);"
                " convert it or pass --format tab|otter|srt|vtt|json|jsonl"
            )
        fmt = detected
    if fmt == "tab":
        turns, warnings = parse_tabbed(text, source)
    elif fmt == "otter":
        turns, warnings = parse_otter(text, source, known_speakers)
    elif fmt in ("srt", "vtt"):
        turns, warnings = parse_subtitles(text, source, fmt)
    elif fmt == "json":
        turns, warnings = parse_json(text, source)
    elif fmt == "jsonl":
        turns, warnings = parse_jsonl(text, source)
    else:
        raise PersonaForgeError(f"unknown --format '{fmt}'; use one of {', '.join(FORMATS)}")
    if not turns:
        raise PersonaForgeError(f"{source}: no speaker turns found as format '{fmt}'; check the file or pass --format")
    return Transcript(source=source, format=fmt, encoding=encoding, turns=turns, warnings=warnings)


def parse_file(path: Path, fmt: str = "auto", known_speakers: set[str] | None = None) -> Transcript:
    source = display_path(path)
    decoded = decode_text(read_bytes(path), source)
    transcript = parse_text(decoded.text, source, fmt, Path(path).suffix, known_speakers, decoded.encoding)
    if decoded.encoding == "cp1252":
        transcript.warnings.insert(0, f"{source}: not valid UTF-8; read as cp1252 (Windows-1252)")
    return transcript


def discover(paths: list[Path]) -> list[Path]:
    """Files named directly, plus transcript files found recursively in folders; sorted, no duplicates."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not files:
                raise PersonaForgeError(f"{path}: no transcripts ({' '.join(EXTENSIONS)}) in this folder")
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise PersonaForgeError(f"{path}: no such file or folder; check --transcripts")
    unique: dict[Path, Path] = {}
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())
