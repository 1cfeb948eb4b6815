"""Small file helpers: atomic writes, text decoding with a fallback, JSONL."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from personaforge.errors import PersonaForgeError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_jsonl(rows: Iterable[Mapping]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def dumps_json(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2) + "\n"


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str  # "utf-8", "utf-8-sig" or "cp1252"


def _line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def decode_text(data: bytes, source: str) -> DecodedText:
    """UTF-8 (BOM allowed), else cp1252; binary or undecodable input is a PersonaForgeError."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise PersonaForgeError(
            f"{source}:{_line_of_offset(data, nul)}: looks like a binary file (NUL byte), not a transcript;"
            " give a text file (.txt .vtt .srt .json .jsonl)"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        encoding, body = "utf-8-sig", data[3:]
    else:
        encoding, body = "utf-8", data
    try:
        return DecodedText(body.decode("utf-8"), encoding)
    except UnicodeDecodeError:
        pass
    try:
        return DecodedText(data.decode("cp1252"), "cp1252")
    except UnicodeDecodeError as exc:
        raise PersonaForgeError(
            f"{source}:{_line_of_offset(data, exc.start)}: cannot decode byte 0x{data[exc.start]:02x}"
            " as UTF-8 or cp1252; re-save the file as UTF-8"
        ) from None


def read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise PersonaForgeError(f"{path}: file not found; check the path") from None
    except IsADirectoryError:
        raise PersonaForgeError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise PersonaForgeError(f"{path}: cannot read ({exc.strerror}); check permissions") from None


def display_path(path: Path) -> str:
    """A path as users gave it: relative to the working directory when inside it (stable across machines)."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def iter_jsonl(text: str, source: str, hint: str):
    """(line number, parsed value) for each non-blank line; bad lines are one-line errors naming file:line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PersonaForgeError(f"{source}:{number}: invalid JSON ({exc.msg}); {hint}") from None
        except (ValueError, RecursionError):  # huge integers, absurd nesting
            raise PersonaForgeError(f"{source}:{number}: invalid JSON (a number too large or nesting too deep); {hint}") from None
        yield number, value


def read_records(path: Path) -> tuple[list[dict], str]:
    """Training records from a .jsonl file, and the file's sha256. Each must have prompt/completion or messages."""
    source = display_path(path)
    data = read_bytes(path)
    rows = []
    for number, row in iter_jsonl(decode_text(data, source).text, source, f"run persona data validate {source}"):
        if not isinstance(row, dict) or not (("prompt" in row and "completion" in row) or "messages" in row):
            raise PersonaForgeError(f"{source}:{number}: not a training record (needs prompt/completion or messages);"
                                    f" run persona data validate {source}")
        rows.append(row)
    return rows, hashlib.sha256(data).hexdigest()
