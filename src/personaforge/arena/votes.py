"""arena/votes.jsonl under the runs folder: one vote per line, appended as it is cast, never rewritten.

A vote names both sides (competitor keys), the question, the eval set and the choice: ``left`` (the left answer is
better), ``right``, ``tie`` or ``both_bad``. A torn last line (a crash mid-write) is skipped with a warning."""

from __future__ import annotations

import json
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, jsonl_lines

VOTES_FILE = Path("arena") / "votes.jsonl"
VOTE_CHOICES = ("left", "right", "tie", "both_bad")
FIELDS = ("left", "right", "question_id", "vote")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def valid_vote(row: object) -> bool:
    return (isinstance(row, dict) and all(isinstance(row.get(k), str) and row[k] for k in FIELDS)
            and row["vote"] in VOTE_CHOICES and row["left"] != row["right"])


class VoteLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._lock = threading.Lock()

    def votes(self) -> list[dict]:
        """Every valid vote in file order; bad lines are skipped and named in ``warnings``."""
        try:
            text = self.path.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise PersonaForgeError(f"{display_path(self.path)}: cannot read the votes ({exc.strerror})") from None
        lines = jsonl_lines(text)
        self.warnings = []
        out = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                row = None
            if valid_vote(row):
                out.append(row)
            elif number == len(lines) and not text.endswith("\n"):
                self.warnings.append(f"{display_path(self.path)}:{number}: the last line is cut off (a crash while"
                                     " writing?); skipped")
            else:
                self.warnings.append(f"{display_path(self.path)}:{number}: not a vote (needs left, right,"
                                     f" question_id and vote of {', '.join(VOTE_CHOICES)}); skipped")
        return out

    def append(self, vote: dict) -> dict:
        if not valid_vote(vote):
            raise PersonaForgeError(f"not a vote: {vote!r}")
        vote = {"at": now(), **vote}
        data = (json.dumps(vote, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "ab+") as handle:
                    end = handle.seek(0, os.SEEK_END)
                    if end:
                        handle.seek(end - 1)
                        if handle.read(1) != b"\n":
                            data = b"\n" + data  # a torn line stays alone on its line
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise PersonaForgeError(f"{display_path(self.path)}: cannot write the vote ({exc.strerror}); check"
                                        " the runs folder's permissions") from None
        return vote
