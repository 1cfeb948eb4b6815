"""Review decisions: the person who knows the material accepts, edits, rejects or flags records (`persona studio`),
and every later build applies what they decided.

The review file lives beside the dataset folder, never inside it (default ``<out>.review.jsonl``), so a rebuild
never loses it. It is only ever appended to, one JSON line per event, flushed and synced as it is made:

    {"n": KEY, "at": TIME, "id": RECORD_ID, "hash": TEXT_HASH, "persona": ..., "type": ...,
     "action": "accept" | "reject" | "edit" | "flag", "question"?: ..., "answer"?: ..., "reason"?: ...,
     "was": {"question": ..., "answer": ...}}
    {"n": KEY, "at": TIME, "id": RECORD_ID, "action": "undo", "undoes": KEY_OF_THE_DECISION_TAKEN_BACK}

A record's decision is its latest one that was not undone; earlier ones stay in the file (two browser tabs deciding
on one record: both are kept, the later wins). A decision applies only to the record it was made on: the same id
*and* the same hash of the record's text (question, answer, earlier turns). When the transcripts change and a
record's text with them, its decision is *stale*: reported with the old and the new text, never applied. A decision
whose id is gone follows its text when exactly one new record of the same persona and type has that very text (a
line added above it renumbers ids); otherwise it is reported as orphaned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from personaforge.config import RECORD_TYPES, DataConfig
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, jsonl_lines
from personaforge.prompting import Exchange, chat_messages, conversation_from_record, plain_completion, plain_prompt

ACTIONS = ("accept", "reject", "edit", "flag")
UNDO = "undo"
STATUS_OF = {"accept": "accepted", "reject": "rejected", "edit": "edited", "flag": "flagged"}
UNDECIDED = "undecided"
STALE = "stale"
STATUSES = (UNDECIDED, "accepted", "edited", "rejected", "flagged", STALE)
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


def synthesized(record: dict) -> bool:
    """Written by a template or a teacher (a question, or a deflection answer), not both verbatim from a transcript."""
    return record.get("generator") != TRANSCRIPT


def with_text(record: dict, question: str, answer: str) -> dict:
    """A copy of the record whose question and answer are replaced, in both training formats (one prompt format)."""
    text = record_text(record)
    name = str(record.get("persona", ""))
    edited = dict(record)
    edited["prompt"] = plain_prompt(text.system, name, question, text.context)
    edited["completion"] = plain_completion(answer)
    if "messages" in record:
        edited["messages"] = chat_messages(text.system, question, text.context, answer)
    return edited


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


# ----------------------------------------------------------------------------------------------- matching
@dataclass(frozen=True)
class Match:
    """A record's review state: its status, the decision behind it, and where that decision came from."""

    status: str
    decision: Decision | None = None
    moved_from: str | None = None  # the id the decision was made under, when the record's id changed

    @property
    def reviewed(self) -> bool:
        return self.status not in (UNDECIDED, STALE)

    @property
    def applies(self) -> bool:
        return self.decision is not None and self.status != STALE


@dataclass
class Matching:
    by_id: dict[str, Match]
    orphaned: list[Decision]  # decisions whose record is gone

    def __getitem__(self, record_id: str) -> Match:
        return self.by_id.get(record_id, Match(UNDECIDED))


def match_decisions(records: list[dict], log: ReviewLog) -> Matching:
    """Each record's decision: the latest for its id if its text hash matches (else stale); a decision whose id
    is gone follows its text to the one record of the same persona and type that has exactly that text."""
    by_id: dict[str, Match] = {}
    hashes = {str(r["id"]): record_hash(r) for r in records}
    waiting: dict[tuple[str, str, str], list[str]] = {}
    for record in records:
        record_id = str(record["id"])
        decision = log.latest(record_id)
        if decision is None:
            by_id[record_id] = Match(UNDECIDED)
            key = (str(record.get("persona", "")), str(record.get("type", "")), hashes[record_id])
            waiting.setdefault(key, []).append(record_id)
        elif decision.hash == hashes[record_id]:
            by_id[record_id] = Match(decision.status, decision)
        else:
            by_id[record_id] = Match(STALE, decision)
    orphaned: list[Decision] = []
    for old_id in log.ids():
        if old_id in hashes:
            continue
        decision = log.latest(old_id)
        assert decision is not None
        candidates = waiting.get((decision.persona, decision.type, decision.hash), [])
        if len(candidates) == 1 and by_id[candidates[0]].decision is None:
            by_id[candidates[0]] = Match(decision.status, decision, moved_from=old_id)
        else:
            orphaned.append(decision)
    return Matching(by_id, orphaned)


# ------------------------------------------------------------------------------------------------ the build
@dataclass
class Outcome:
    record: dict
    match: Match
    kept: bool
    unreviewed: bool = False  # dropped by require_review


@dataclass
class Reviewed:
    """The build's records after the decisions were applied, and what happened to each."""

    outcomes: list[Outcome]
    orphaned: list[Decision]
    log: ReviewLog
    require_review: bool
    warnings: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[dict]:
        """The kept records of one split (train / eval), in build order, without the split tag."""
        return [{k: v for k, v in o.record.items() if k != "split"} for o in self.outcomes
                if o.kept and o.record.get("split") == name]

    def card_section(self) -> dict:
        return review_summary(self.outcomes, self.orphaned, self.log, self.require_review)


def apply_decisions(records: list[dict], log: ReviewLog, require_review: bool = False) -> Reviewed:
    """Apply the review: rejected records are dropped, edits replace the text (the record keeps its id and split),
    stale decisions are reported and not applied; with ``require_review`` a synthesized record is kept only when
    accepted or edited. ``records`` are the build's records as generated (each may carry a ``split``)."""
    matching = match_decisions(records, log)
    outcomes: list[Outcome] = []
    for record in records:
        match = matching[str(record["id"])]
        decision = match.decision if match.applies else None
        if decision is not None and decision.action == "reject":
            outcomes.append(Outcome(record, match, kept=False))
            continue
        if require_review and synthesized(record) and (decision is None or decision.action not in ("accept", "edit")):
            outcomes.append(Outcome(record, match, kept=False, unreviewed=True))
            continue
        kept = record
        if decision is not None:
            if decision.action == "edit":
                kept = with_text(record, decision.question or "", decision.answer or "")
            kept = {**kept, "source": {**(kept.get("source") or {}), "review": match.status}}
        outcomes.append(Outcome(kept, match, kept=True))
    warnings = list(log.warnings)
    stale = [o for o in outcomes if o.match.status == STALE]
    if stale:
        warnings.append(f"review: {len(stale)} decision(s) are stale (the record's text changed since the decision,"
                        f" e.g. '{stale[0].record['id']}') and were not applied; see persona data review-status or"
                        " the studio")
    if matching.orphaned:
        warnings.append(f"review: {len(matching.orphaned)} decision(s) are for records this build no longer has"
                        f" (e.g. '{matching.orphaned[0].id}'); they were not applied")
    return Reviewed(outcomes, matching.orphaned, log, require_review, warnings)


# ---------------------------------------------------------------------------------------------- progress
COUNTED = ("total", "reviewed", "accepted", "edited", "rejected", "flagged", "stale")


def progress_table(records: list[dict], matching: Matching) -> dict[str, dict[str, dict[str, int]]]:
    """{persona: {type: {total, reviewed, accepted, edited, rejected, flagged, stale}}}; types without records are left
    out. Reviewed counts accepted, edited, rejected and flagged records."""
    table: dict[str, dict[str, Counter]] = {}
    for record in records:
        match = matching[str(record["id"])]
        counts = table.setdefault(str(record.get("persona", "")), {}).setdefault(str(record.get("type", "")), Counter())
        counts["total"] += 1
        counts[match.status] += 1
        counts["reviewed"] += match.reviewed
    order = {t: i for i, t in enumerate(RECORD_TYPES)}
    return {persona: {t: {k: types[t].get(k, 0) for k in COUNTED}
                      for t in sorted(types, key=lambda t: (order.get(t, len(order)), t))}
            for persona, types in sorted(table.items())}


def totals(table: dict[str, dict[str, dict[str, int]]]) -> dict[str, int]:
    counts: Counter = Counter()
    for types in table.values():
        for row in types.values():
            counts.update(row)
    return {k: counts.get(k, 0) for k in COUNTED}


def _change(decision: Decision, record: dict | None) -> dict:
    entry = {"id": decision.id, "action": decision.action, "at": decision.at,
             "old": decision.was.to_json()}
    if decision.reason:
        entry["reason"] = decision.reason
    if record is not None:
        entry["new"] = record_text(record).to_json()
    return entry


def review_summary(outcomes: list[Outcome], orphaned: list[Decision], log: ReviewLog, require_review: bool) -> dict:
    """The dataset card's review section: decisions applied and stale per persona and type."""
    records = [o.record for o in outcomes]
    matching = Matching({str(o.record["id"]): o.match for o in outcomes}, orphaned)
    table = progress_table(records, matching)
    for outcome in outcomes:
        row = table[str(outcome.record.get("persona", ""))][str(outcome.record.get("type", ""))]
        row["applied"] = row.get("applied", 0) + outcome.match.applies
        row["dropped_unreviewed"] = row.get("dropped_unreviewed", 0) + outcome.unreviewed
    for types in table.values():
        for row in types.values():
            row.setdefault("applied", 0)
            row.setdefault("dropped_unreviewed", 0)
    return {
        "require_review": require_review,
        "decisions": log.decisions,
        "totals": {**totals(table), "applied": sum(o.match.applies for o in outcomes),
                   "moved": sum(o.match.moved_from is not None for o in outcomes),
                   "dropped_unreviewed": sum(o.unreviewed for o in outcomes), "orphaned": len(orphaned)},
        "by_persona_type": table,
        "stale": [_change(o.match.decision, o.record) for o in outcomes
                  if o.match.status == STALE and o.match.decision is not None],
        "orphaned": [_change(d, None) for d in orphaned],
        "warnings": list(log.warnings),
    }


# --------------------------------------------------------------------------------------------------- risk
# "EDITOR NOTE: ..." or "SAM: ..." starting a sentence inside a turn
CAPS_LABEL = re.compile(r"(?:^|(?<=[.!?…] )|(?<=\n))[A-Z]{2,}(?: [A-Z]{2,})*:(?=\s)")

def risk(record: dict, threshold: float | None = None) -> tuple[float, list[str]]:
    """How likely the record is to be bad, 0..1, and why: the data stage's own signals (who wrote the question,
    how well the passage fits it, where the passage was cut). Review sorts by it, most likely bad first."""
    source = record.get("source") or {}
    asked = source.get("question", TRANSCRIPT)
    score = 0.0
    reasons: list[str] = []
    written = {"rephrased": (0.25, "the question is a rephrasing of the real one"),
               "continuation": (0.15, "a continuation prompt for a later part of a long turn"),
               "topic": (0.3, "the question was written from a card topic"),
               "marker": (0.3, "the question was written from a card marker"),
               "contrastive": (0.3, "a contrastive question put to every persona"),
               "deflection": (0.35, "question and answer written from the card (an out-of-domain deflection)")}
    if asked in written:
        weight, why = written[asked]
        score += weight
        reasons.append(f"{why} ({record.get('generator', '?')})")
    fit = source.get("fit")
    if isinstance(fit, (int, float)):
        if threshold is not None:
            margin = max(0.0, min(1.0, (fit - threshold) / 0.25))
            score += 0.4 * (1 - margin)
            reasons.append(f"question/answer fit {fit:.2f} (threshold {threshold:.2f})")
        else:
            score += 0.4 * max(0.0, 1 - fit)
            reasons.append(f"question/answer fit {fit:.2f}")
    if source.get("skipped_sentences"):
        score += 0.1
        reasons.append(f"{source['skipped_sentences']} opening sentence(s) left out")
    text = record_text(record)
    answer = text.answer.strip()
    if source.get("chunk"):
        score += 0.1
        reasons.append("a later chunk of a long turn")
    if len(answer.split()) < 8:
        score += 0.1
        reasons.append("a very short answer")
    if answer and answer[-1] not in ".!?…\"”’)":
        score += 0.15
        reasons.append("the answer ends mid-sentence")
    label = CAPS_LABEL.search(answer)
    if label:
        score += 0.3
        reasons.append(f"the answer holds an all-caps label ('{label.group().strip()}'): a production note or another"
                       " speaker's line?")
    return round(min(score, 1.0), 3), reasons
