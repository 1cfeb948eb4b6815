"""The review log: the append-only file where a reviewer's decisions are kept, read back with torn-line tolerance.

One JSON line per event, flushed and synced as it is made, never rewritten (an edit or an undo is a new line):

    {"n": KEY, "at": TIME, "id": RECORD_ID, "hash": TEXT_HASH, "persona": ..., "type": ...,
     "action": "accept" | "reject" | "edit" | "flag", "question"?: ..., "answer"?: ..., "reason"?: ...,
     "was": {"question": ..., "answer": ...}}
    {"n": KEY, "at": TIME, "id": RECORD_ID, "action": "undo", "undoes": KEY_OF_THE_DECISION_TAKEN_BACK}

A decision carries the hash of the record text it was made on (``text_hash``), which is why the record's text lives
here too: matching (``review_apply``) compares that hash with the rebuilt record's.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from personaforge.config import DataConfig
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, jsonl_lines
from personaforge.prompting import Exchange, conversation_from_record

ACTIONS = ("accept", "reject", "edit", "flag")
UNDO = "undo"
STATUS_OF = {"accept": "accepted", "reject": "rejected", "edit": "edited", "flag": "flagged"}
TRANSCRIPT = "transcript"  # generator of records whose question and answer are both verbatim transcript text

MAX_QUESTION_CHARS = 2000
MAX_ANSWER_CHARS = 20000
MAX_REASON_CHARS = 2000


class ReviewError(PersonaForgeError):
    """A decision that cannot be recorded as asked (an emptied answer, an unknown action)."""


class NothingToUndo(ReviewError):
    pass


# ------------------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class RecordText:
    """What a reviewer judges: the question, the answer and the earlier turns (the system prompt is the card's)."""

    question: str
    answer: str
    context: tuple[Exchange, ...] = ()
    system: str = ""

    def to_json(self) -> dict:
        return {"question": self.question, "answer": self.answer}


def record_text(record: dict) -> RecordText:
    conversation = conversation_from_record(record)
    if conversation is not None and conversation.answer is not None:
        return RecordText(conversation.question, conversation.answer, conversation.history, conversation.system)
    return RecordText(str(record.get("prompt", "")), str(record.get("completion", "")).strip())


def _squash(text: str) -> str:
    return " ".join(text.split())


def text_hash(text: RecordText) -> str:
    """A short hash of the record's text; whitespace differences do not count."""
    payload = json.dumps({"context": [[_squash(e.question), _squash(e.answer)] for e in text.context],
                          "question": _squash(text.question), "answer": _squash(text.answer)},
                         ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def record_hash(record: dict) -> str:
    return text_hash(record_text(record))


# ------------------------------------------------------------------------------------------- the review file
def review_path(config: DataConfig) -> Path:
    """Where a build's decisions live: ``data.review_file``, else ``<out>.review.jsonl`` beside the dataset folder."""
    if config.review_file:
        return Path(config.review_file)
    return default_review_path(Path(config.out))


def default_review_path(dataset: Path) -> Path:
    dataset = Path(dataset)
    return dataset.with_name(dataset.name + ".review.jsonl")


@dataclass(frozen=True)
class Decision:
    n: str
    at: str
    id: str
    action: str
    hash: str
    persona: str = ""
    type: str = ""
    question: str | None = None
    answer: str | None = None
    reason: str | None = None
    was: RecordText = RecordText("", "")
    line: int = 0

    @property
    def status(self) -> str:
        return STATUS_OF[self.action]

    def to_json(self) -> dict:
        data = {"n": self.n, "at": self.at, "id": self.id, "action": self.action, "status": self.status}
        if self.action == "edit":
            data["question"], data["answer"] = self.question, self.answer
        if self.reason:
            data["reason"] = self.reason
        return data


def _decision(event: dict, line: int) -> Decision | None:
    try:
        was = event.get("was") or {}
        return Decision(
            n=str(event["n"]), at=str(event.get("at", "")), id=str(event["id"]), action=str(event["action"]),
            hash=str(event["hash"]), persona=str(event.get("persona", "")), type=str(event.get("type", "")),
            question=event.get("question"), answer=event.get("answer"), reason=event.get("reason") or None,
            was=RecordText(str(was.get("question", "")), str(was.get("answer", ""))), line=line)
    except (KeyError, TypeError, AttributeError):
        return None


class ReviewLog:
    """The decisions of one review file, replayed in file order; appends go to the file first, then to memory.

    Thread-safe (the studio's requests run concurrently), and it reloads when another process appended."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.warnings: list[str] = []
        self._lock = threading.RLock()
        self._decisions: dict[str, Decision] = {}  # n → decision, in file order (dicts keep insertion order)
        self._by_id: dict[str, list[str]] = {}  # record id → its decisions' keys, oldest first
        self._undone: set[str] = set()
        self.events = 0
        self._seen: tuple[int, int] | None = None  # (size, mtime_ns) of the file as last read or written

    # -------------------------------------------------------------------------------------------- reading
    @classmethod
    def load(cls, path: Path) -> "ReviewLog":
        log = cls(path)
        log.reload()
        return log

    def reload(self) -> None:
        with self._lock:
            self.warnings = []
            self._decisions, self._by_id, self._undone, self.events = {}, {}, set(), 0
            try:
                data = self.path.read_bytes()
                stat = self.path.stat()
            except (FileNotFoundError, NotADirectoryError):
                # no review file yet (a folder on its path that is a file is --out's problem, reported when writing)
                self._seen = None
                return
            except OSError as exc:
                raise PersonaForgeError(f"{display_path(self.path)}: cannot read the review file ({exc.strerror});"
                                        " check its permissions") from None
            self._seen = (stat.st_size, stat.st_mtime_ns)
            text = data.decode("utf-8", errors="replace")
            lines = jsonl_lines(text)
            last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
            for index, line in enumerate(lines):
                if not line.strip():
                    continue
                where = f"{display_path(self.path)}:{index + 1}"
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    event = None
                if not isinstance(event, dict):
                    if index == last and not text.endswith("\n"):
                        self.warnings.append(f"{where}: the last line is cut off (written during a crash?); it was"
                                             " ignored, the decisions before it count")
                    else:
                        self.warnings.append(f"{where}: not a JSON object; the line was ignored")
                    continue
                self._replay(event, where, index + 1)

    def _replay(self, event: dict, where: str, line: int) -> None:
        action = event.get("action")
        if action == UNDO:
            target = str(event.get("undoes", ""))
            if target in self._decisions:
                self._undone.add(target)
                self.events += 1
            else:
                self.warnings.append(f"{where}: undo of an unknown decision '{target}'; ignored")
            return
        decision = _decision(event, line) if action in ACTIONS else None
        if decision is None:
            self.warnings.append(f"{where}: not a review decision (needs n, id, hash and an action of"
                                 f" {', '.join(ACTIONS)}); the line was ignored")
            return
        self._decisions[decision.n] = decision
        self._by_id.setdefault(decision.id, []).append(decision.n)
        self.events += 1

    def refresh(self) -> bool:
        """Reload when the file changed behind our back (another process, a hand edit); True if it did."""
        with self._lock:
            try:
                stat = self.path.stat()
                now: tuple[int, int] | None = (stat.st_size, stat.st_mtime_ns)
            except FileNotFoundError:
                now = None
            if now == self._seen:
                return False
            self.reload()
            return True

    def latest(self, record_id: str) -> Decision | None:
        with self._lock:
            for n in reversed(self._by_id.get(record_id, [])):
                if n not in self._undone:
                    return self._decisions[n]
            return None

    def history(self, record_id: str) -> list[Decision]:
        """Every decision on the record that was not undone, oldest first."""
        with self._lock:
            return [self._decisions[n] for n in self._by_id.get(record_id, []) if n not in self._undone]

    def last(self) -> Decision | None:
        """The latest decision in the file that was not undone."""
        with self._lock:
            return next((d for n, d in reversed(self._decisions.items()) if n not in self._undone), None)

    def get(self, n: str) -> Decision | None:
        with self._lock:
            decision = self._decisions.get(n)
            return None if decision is None or n in self._undone else decision

    def ids(self) -> list[str]:
        with self._lock:
            return [record_id for record_id in self._by_id if self.latest(record_id) is not None]

    @property
    def version(self) -> int:
        """The file's size as last read or written: it grows with every event (the file is only appended to)."""
        return self._seen[0] if self._seen else 0

    @property
    def decisions(self) -> int:
        """Decisions in force or superseded, not counting undone ones."""
        with self._lock:
            return len(self._decisions) - len(self._undone)

    # -------------------------------------------------------------------------------------------- writing
    def decide(self, record: dict, action: str, question: str | None = None, answer: str | None = None,
               reason: str | None = None) -> Decision:
        """Record a decision on ``record`` (as built, before review): checked, appended and synced, then in force."""
        event = decision_event(record, action, question, answer, reason)
        with self._lock:
            self._append(event)
            self._replay(event, display_path(self.path), 0)
            return self._decisions[event["n"]]

    def undo(self, n: str | None = None) -> Decision:
        """Take back decision ``n`` (default: the latest one in force); returns the decision taken back."""
        with self._lock:
            self.refresh()
            target = self.get(n) if n else self.last()
            if target is None:
                raise NothingToUndo("nothing to undo" if not n else f"decision '{n}' is not in force (already undone?)")
            self._append({"n": _key(), "at": _now(), "id": target.id, "action": UNDO, "undoes": target.n})
            self._undone.add(target.n)
            self.events += 1
            return target

    def _append(self, event: dict) -> None:
        line = (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
        self.refresh()  # replay what another process appended first: its decisions are older than this one
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a torn last line stays a line of its own, reported on load
                os.write(fd, line)
                os.fsync(fd)
                stat = os.fstat(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise PersonaForgeError(f"{display_path(self.path)}: cannot write the review file ({exc.strerror});"
                                    " check the folder's permissions") from None
        self._seen = (stat.st_size, stat.st_mtime_ns)


def load_review(path: Path) -> ReviewLog:
    return ReviewLog.load(path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _key() -> str:
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{secrets.token_hex(3)}"


def _clean(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ReviewError(f"'{name}' must be text")
    if len(value) > limit:
        raise ReviewError(f"the {name} is too long ({len(value)} characters; at most {limit})")
    return value.strip()


def decision_event(record: dict, action: str, question: str | None = None, answer: str | None = None,
                   reason: str | None = None) -> dict:
    """The review-file line for a decision, checked: an edit must leave a question and an answer."""
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    text = record_text(record)
    question = _clean(question, "question", MAX_QUESTION_CHARS)
    answer = _clean(answer, "answer", MAX_ANSWER_CHARS)
    reason = _clean(reason, "reason", MAX_REASON_CHARS)
    event = {"n": _key(), "at": _now(), "id": str(record["id"]), "hash": text_hash(text),
             "persona": str(record.get("persona", "")), "type": str(record.get("type", "")), "action": action}
    if action == "edit":
        if question is None and answer is None:
            raise ReviewError("an edit needs a new question or answer")
        if answer is not None and not answer:
            raise ReviewError("the answer cannot be empty: reject the record instead of emptying its answer")
        if question is not None and not question:
            raise ReviewError("the question cannot be empty: reject the record instead of emptying its question")
        event["question"] = question if question is not None else text.question
        event["answer"] = answer if answer is not None else text.answer
    elif question is not None or answer is not None:
        raise ReviewError(f"'{action}' takes no question or answer; use the action 'edit' to change the text")
    if reason:
        event["reason"] = reason
    event["was"] = {"question": text.question, "answer": text.answer}
    return event
