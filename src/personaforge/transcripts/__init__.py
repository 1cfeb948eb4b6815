"""Transcript parsing: one parser per format, auto-detected by extension and content."""

from __future__ import annotations

from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import decode_text, display_path, read_bytes
from personaforge.transcripts.base import ONSCREEN, SPEECH, SUBTITLE, Transcript, Turn
from personaforge.transcripts.colon import parse_colon
from personaforge.transcripts.descript import parse_descript
from personaforge.transcripts.detect import Detection, detect
from personaforge.transcripts.docxfile import read_docx
from personaforge.transcripts.jsonfmt import parse_json, parse_jsonl
from personaforge.transcripts.otter import parse_otter
from personaforge.transcripts.rev import parse_rev
from personaforge.transcripts.subtitles import parse_subtitles
from personaforge.transcripts.tabbed import parse_tabbed
from personaforge.transcripts.whisper import parse_whisper

__all__ = ["FORMATS", "EXTENSIONS", "ONSCREEN", "SPEECH", "SUBTITLE", "Detection", "Transcript", "Turn",
           "detect", "detect_format", "discover", "parse_file", "parse_text"]

# Text layouts (tab … colon) apply to .txt and .docx alike; a .docx is read as text first.
FORMATS = ("auto", "tab", "otter", "colon", "rev", "descript", "srt", "vtt", "json", "jsonl", "whisper")
EXTENSIONS = (".txt", ".vtt", ".srt", ".json", ".jsonl", ".docx")
FORMAT_HELP = ("Transcript format: auto (default), tab, otter, colon (Name: text), rev, descript (also Trint), srt,"
               " vtt, json, jsonl, whisper (Whisper/WhisperX JSON).")

LABEL_EXAMPLES = {
    "tab": "'Name<TAB>text'", "otter": "'Name  12:34' on its own line",
    "colon": "'Name: text', with each name used at least twice", "rev": "'Name (00:01:02):'",
    "descript": "'[00:01:02] Name: text' or 'Name [00:01:02]'", "srt": "'NAME: text' in a cue",
    "vtt": "'<v Name>text' in a cue", "json": '{"speaker": ..., "text": ...}', "jsonl": '{"speaker": ..., "text": ...}',
    "whisper": '{"segments": [{"speaker": ..., "text": ...}]}',
}


def detect_format(text: str, suffix: str) -> str | None:
    """Pick a format from the extension, then from what the content looks like."""
    return detect(text, suffix).format


def _parse_as(fmt: str, text: str, source: str, known_speakers: set[str] | None):
    if fmt == "tab":
        return parse_tabbed(text, source)
    if fmt == "otter":
        return parse_otter(text, source, known_speakers)
    if fmt == "colon":
        return parse_colon(text, source, known_speakers)
    if fmt == "rev":
        return parse_rev(text, source)
    if fmt == "descript":
        return parse_descript(text, source)
    if fmt in ("srt", "vtt"):
        return parse_subtitles(text, source, fmt)
    if fmt == "json":
        return parse_json(text, source)
    if fmt == "jsonl":
        return parse_jsonl(text, source)
    if fmt == "whisper":
        return parse_whisper(text, source)
    raise PersonaForgeError(f"unknown --format '{fmt}'; use one of {', '.join(FORMATS)}")


def parse_text(text: str, source: str, fmt: str = "auto", suffix: str = ".txt",
               known_speakers: set[str] | None = None, encoding: str = "utf-8", *,
               paragraph_of: list[int] | None = None) -> Transcript:
    """Parse transcript text. ``paragraph_of`` maps each text line (0-based) to the Word paragraph it came from, so
    turns and errors of a .docx name paragraphs, which a user can find, rather than lines of the extracted text."""

    def line_no(line: int) -> int:
        return paragraph_of[line - 1] if paragraph_of and 0 < line <= len(paragraph_of) else line

    if not text.strip():
        raise PersonaForgeError(f"{source}: the transcript is empty; remove it or add its text")
    detection: Detection | None = None
    if fmt == "auto":
        detection = detect(text, suffix, known_speakers)
        if detection.format is None:
            raise PersonaForgeError(
                f"{source}: unknown transcript format (no 'Name: text', 'Name<TAB>text', 'Name  MM:SS' or"
                " 'Name (MM:SS):' lines, not SRT/VTT/JSON); convert it or pass --format"
                f" {'|'.join(FORMATS[1:])}"
            )
        fmt = detection.format
    turns, warnings = _parse_as(fmt, text, source, known_speakers)
    if not turns:
        # Name the first line, which is where a reader would look for the first label.
        first = next((n for n, line in enumerate(text.splitlines(), start=1) if line.strip()), 1)
        raise PersonaForgeError(f"{source}:{line_no(first)}: no speaker turns found as format '{fmt}' (labels look like"
                                f" {LABEL_EXAMPLES[fmt]}); check the file or pass --format")
    for turn in turns:
        turn.line, turn.end_line = line_no(turn.line), line_no(turn.end_line)
    transcript = Transcript(source=source, format=fmt, encoding=encoding, turns=turns, warnings=warnings)
    if detection is not None:
        transcript.alternatives = list(detection.alternatives)
        if detection.alternatives:
            others = ", ".join(f"'{a}' ({detection.votes[a]})" for a in detection.alternatives)
            transcript.warnings.append(
                f"{source}: ambiguous layout: read as '{fmt}' ({detection.votes[fmt]} label lines) but it also fits"
                f" {others}; check `persona data speakers` and pass --format {detection.alternatives[0]} if the"
                " speakers look wrong")
    else:
        transcript.forced = True
    return transcript


def parse_file(path: Path, fmt: str = "auto", known_speakers: set[str] | None = None) -> Transcript:
    source = display_path(path)
    data = read_bytes(path)
    if Path(path).suffix.lower() == ".docx":
        text, paragraph_of = read_docx(data, source)
        return parse_text(text, source, fmt, ".docx", known_speakers, "docx", paragraph_of=paragraph_of)
    decoded = decode_text(data, source)
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
            # Hidden folders and Word's "~$name.docx" lock files (there while a document is open) are not transcripts.
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
                           and not p.name.startswith("~$")
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
