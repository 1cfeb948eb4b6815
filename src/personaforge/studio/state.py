"""What the studio serves: the build's records (as generated, before review), their decisions, provenance.

Records come from the dataset folder's ``candidates.jsonl`` (every record the build generated, with its split);
decisions go to the review file. Nothing here takes a path from a request: records are looked up by id in memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from personaforge.config import RECORD_TYPES
from personaforge.dataset.review import (ACTIONS, STALE, STATUSES, UNDECIDED, Decision, Match, ReviewError, ReviewLog,
                                         default_review_path, match_decisions, progress_table, record_text, risk,
                                         totals)
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, iter_jsonl, read_bytes
from personaforge.studio.provenance import Provenance

CANDIDATES = "candidates.jsonl"
CARD = "dataset_card.json"
MAX_LIMIT = 5000
STATUS_FILTERS = ("", "todo", "reviewed", *STATUSES)  # todo: undecided, stale or flagged


class NotFound(PersonaForgeError):
    pass


@dataclass(frozen=True)
class Entry:
    record: dict
    order: int
    risk: float
    reasons: tuple[str, ...]


def _known_speakers(card: dict) -> set[str] | None:
    from personaforge.personas import Roster, load_cards

    files = [Path(p) for p in (card.get("config") or {}).get("personas") or []]
    try:
        return Roster(load_cards(files)).known_labels if files else None
    except PersonaForgeError:
        return None  # cards moved since the build: the parser guesses speakers as it would without cards


class Studio:
    def __init__(self, dataset: Path, review_file: Path, records: list[dict], card: dict) -> None:
        self.dataset = Path(dataset)
        self.review_file = Path(review_file)
        self.card = card
        threshold = ((card.get("quality") or {}).get("fit") or {}).get("threshold")
        self.entries: dict[str, Entry] = {}
        for order, record in enumerate(records):
            score, reasons = risk(record, threshold)
            self.entries[str(record["id"])] = Entry(record, order, score, tuple(reasons))
        self.records = records
        self.log = ReviewLog.load(self.review_file)
        self.provenance = Provenance(card, _known_speakers(card))

    @classmethod
    def open(cls, dataset: Path, review_file: Path | None = None) -> "Studio":
        """The dataset folder `persona data build` wrote; a user error when it is not one."""
        dataset = Path(dataset)
        shown = display_path(dataset)
        if not dataset.is_dir():
            raise PersonaForgeError(f"{shown}: no dataset folder here; build it first (persona data build CONFIG)"
                                    " or pass --data DIR")
        if not (dataset / CANDIDATES).is_file():
            raise PersonaForgeError(f"{shown}: has no {CANDIDATES} (the records before review); rebuild it with this"
                                    " version: persona data build CONFIG")
        card_path = dataset / CARD
        try:
            card = json.loads(read_bytes(card_path).decode("utf-8")) if card_path.is_file() else {}
        except ValueError:
            raise PersonaForgeError(f"{display_path(card_path)}: not valid JSON; rebuild the dataset") from None
        records = []
        seen: set[str] = set()
        source = display_path(dataset / CANDIDATES)
        text = read_bytes(dataset / CANDIDATES).decode("utf-8", errors="replace")
        for number, row in iter_jsonl(text, source, "rebuild the dataset (persona data build CONFIG)"):
            if not isinstance(row, dict) or not isinstance(row.get("id"), (str, int)) or str(row["id"]) in seen:
                raise PersonaForgeError(f"{source}:{number}: a record without a unique id; rebuild the dataset")
            seen.add(str(row["id"]))
            records.append(row)
        if review_file is None:
            configured = (card.get("config") or {}).get("review_file")
            review_file = Path(configured) if configured else default_review_path(dataset)
        if review_file.resolve().is_relative_to(dataset.resolve()):
            raise PersonaForgeError(f"{display_path(review_file)}: the review file must live outside the dataset folder"
                                    " (a rebuild replaces what is inside it)")
        if review_file.exists() and not review_file.is_file():
            raise PersonaForgeError(f"{display_path(review_file)}: is not a file; pass another --review-file")
        return cls(dataset, review_file, records, card)

    # ------------------------------------------------------------------------------------------ reading
    @property
    def version(self) -> int:
        """Changes whenever a decision is written (by this studio, another one, or a hand edit)."""
        self.log.refresh()
        return self.log.version

    def _matching(self):
        self.log.refresh()
        return match_decisions(self.records, self.log)

    def entry(self, record_id: str) -> Entry:
        entry = self.entries.get(record_id)
        if entry is None:
            raise NotFound(f"no record '{record_id}' in this dataset")
        return entry

    @staticmethod
    def _current(record: dict, match: Match) -> dict:
        text = record_text(record)
        if match.applies and match.decision is not None and match.decision.action == "edit":
            return {"question": match.decision.question, "answer": match.decision.answer}
        return text.to_json()

    def _summary(self, entry: Entry, match: Match) -> dict:
        record = entry.record
        current = self._current(record, match)
        return {"id": str(record["id"]), "persona": record.get("persona"), "type": record.get("type"),
                "split": record.get("split"), "generator": record.get("generator"), "status": match.status,
                "decision": match.decision.n if match.decision else None, "risk": entry.risk,
                "question": current["question"], "answer": current["answer"]}

    def filters(self) -> dict:
        def values(key: str) -> list[str]:
            return sorted({str(r.get(key)) for r in self.records if r.get(key) is not None})

        types = values("type")
        order = {t: i for i, t in enumerate(RECORD_TYPES)}
        return {"persona": values("persona"), "type": sorted(types, key=lambda t: (order.get(t, 99), t)),
                "generator": values("generator"), "split": values("split"), "status": list(STATUS_FILTERS)}

    def query(self, persona: str = "", type: str = "", generator: str = "", split: str = "", status: str = "",
              sort: str = "risk", offset: int = 0, limit: int = 50) -> dict:
        if status not in STATUS_FILTERS:
            raise ReviewError(f"status {status!r}: use one of {', '.join(s or '(empty)' for s in STATUS_FILTERS)}")
        if sort not in ("risk", "file"):
            raise ReviewError(f"sort {sort!r}: use risk or file")
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            raise ReviewError(f"offset must be 0 or more and limit between 1 and {MAX_LIMIT}")
        matching = self._matching()
        rows = []
        for record_id, entry in self.entries.items():
            record = entry.record
            match = matching[record_id]
            if persona and record.get("persona") != persona or type and record.get("type") != type:
                continue
            if generator and record.get("generator") != generator or split and record.get("split") != split:
                continue
            if status == "todo" and match.status not in (UNDECIDED, STALE, "flagged"):
                continue
            if status == "reviewed" and not match.reviewed:
                continue
            if status and status not in ("todo", "reviewed") and match.status != status:
                continue
            rows.append((entry, match))
        if sort == "risk":
            rows.sort(key=lambda row: (-row[0].risk, row[0].order))
        else:
            rows.sort(key=lambda row: row[0].order)
        page = rows[offset:offset + limit]
        return {"records": [self._summary(entry, match) for entry, match in page], "total": len(rows),
                "offset": offset, "limit": limit, "version": self.log.version}

    def detail(self, record_id: str) -> dict:
        entry = self.entry(record_id)
        record = entry.record
        match = self._matching()[record_id]
        text = record_text(record)
        current = self._current(record, match)
        stale = None
        if match.status == STALE and match.decision is not None:
            stale = {"decision": match.decision.to_json(), "old": match.decision.was.to_json(), "new": text.to_json()}
        history = self.log.history(match.moved_from or record_id)
        return {
            **self._summary(entry, match),
            "segment": record.get("segment"),
            "system": text.system,
            "context": [{"question": e.question, "answer": e.answer} for e in text.context],
            "original": text.to_json(),
            "current": current,
            "decision": match.decision.to_json() if match.decision else None,
            "history": [d.to_json() for d in history],
            "stale": stale,
            "moved_from": match.moved_from,
            "risk_reasons": list(entry.reasons),
            "source": record.get("source") or {},
            "provenance": self.provenance.excerpt(record, text.answer),
            "version": self.log.version,
        }

    def progress(self) -> dict:
        matching = self._matching()
        table = progress_table(self.records, matching)
        return {"by_persona_type": table, "totals": totals(table), "stale": sum(
            1 for m in matching.by_id.values() if m.status == STALE), "orphaned": len(matching.orphaned),
            "warnings": list(self.log.warnings), "version": self.log.version}

    def stale(self) -> dict:
        matching = self._matching()
        stale = []
        for record_id, match in matching.by_id.items():
            if match.status == STALE and match.decision is not None:
                text = record_text(self.entries[record_id].record)
                stale.append({"id": record_id, "decision": match.decision.to_json(),
                              "old": match.decision.was.to_json(), "new": text.to_json()})
        orphaned = [{"id": d.id, "decision": d.to_json(), "old": d.was.to_json()} for d in matching.orphaned]
        return {"stale": stale, "orphaned": orphaned, "version": self.log.version}

    # ------------------------------------------------------------------------------------------ writing
    def decide(self, record_id: str, action: str, question: str | None = None, answer: str | None = None,
               reason: str | None = None, base: str | None = None) -> dict:
        """Record a decision. ``base`` is the decision the client last saw on the record: when another tab decided
        since, both are kept, this one wins, and the answer says what it replaced."""
        entry = self.entry(record_id)
        if action not in ACTIONS:
            raise ReviewError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
        before = self._matching()[record_id]
        decision = self.log.decide(entry.record, action, question, answer, reason)
        replaced = None
        previous = before.decision if before.decision is not None and before.status != STALE else None
        if previous is not None and previous.n != (base or None):
            replaced = previous.to_json()
        result = self.detail(record_id)
        result["changed"] = {"decision": decision.n, "replaced": replaced}
        return result

    def undo(self, n: str | None = None) -> dict:
        taken: Decision = self.log.undo(n)
        record_id = taken.id
        if record_id not in self.entries:  # an orphaned decision: nothing to show
            return {"undone": taken.to_json(), "record": None, "version": self.log.version}
        return {"undone": taken.to_json(), "record": self.detail(record_id), "version": self.log.version}

    def stats_line(self) -> str:
        return (f"{len(self.records)} records of {display_path(self.dataset)}; decisions go to"
                f" {display_path(self.review_file)}")
