"""Small file helpers: atomic writes, text decoding with a fallback, JSONL. Depends on nothing in the package but
errors (reading records with their checks is dataset.validate.read_records)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from personaforge.errors import PersonaForgeError


def default_mode(directory: bool = False) -> int:
    """The mode open()/mkdir() would give under the current umask (mkstemp/mkdtemp make things owner-only)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def replace_dir(staging: Path, final: Path) -> None:
    """Move a fully written staging folder into place; the old folder is only removed once the new one is there."""
    old = final.parent / f".{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file owner-only; outputs get the usual permissions, as open() would give them.
        os.chmod(tmp, default_mode())
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


TRANSCRIPT_TEXT = "a transcript; give a text file (.txt .vtt .srt .json .jsonl)"


def decode_text(data: bytes, source: str, expected: str = TRANSCRIPT_TEXT) -> DecodedText:
    """UTF-8 (BOM allowed), else cp1252; binary or undecodable input is a PersonaForgeError.

    ``expected`` completes the binary-file message: "not <expected>" (what the file should have been).
    """
    nul = data.find(b"\x00")
    if nul >= 0:
        raise PersonaForgeError(
            f"{source}:{_line_of_offset(data, nul)}: looks like a binary file (NUL byte), not {expected}"
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


def jsonl_lines(text: str) -> list[str]:
    """JSONL lines end at "\n" only (a "\r" before it is JSON whitespace). str.splitlines() would also break at
    U+2028, U+2029 and U+0085, which JSON strings may hold unescaped, as our own writer leaves them."""
    return text.split("\n")


def iter_jsonl(text: str, source: str, hint: str):
    """(line number, parsed value) for each non-blank line; bad lines are one-line errors naming file:line."""
    for number, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PersonaForgeError(f"{source}:{number}: invalid JSON ({exc.msg}); {hint}") from None
        except (ValueError, RecursionError):  # huge integers, absurd nesting
            raise PersonaForgeError(f"{source}:{number}: invalid JSON (a number too large or nesting too deep); {hint}") from None
        yield number, value


JSONL_TEXT = "a JSONL file of records; give a text file with one JSON object per line"
