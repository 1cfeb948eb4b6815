"""Matching review decisions to a build's records and applying them; the progress counts and the card's review section.

A decision applies only to the record it was made on: the same id *and* the same hash of the record's text. When the
transcripts change and a record's text with them, its decision is *stale*: reported with the old and the new text,
never applied. A decision whose id is gone follows its text when exactly one new record of the same persona and type
has that very text (a line added above it renumbers ids); otherwise it is reported as orphaned.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from personaforge.config import RECORD_TYPES
from personaforge.dataset.review_log import TRANSCRIPT, Decision, ReviewLog, record_hash, record_text
from personaforge.prompting import chat_messages, plain_completion, plain_prompt

UNDECIDED = "undecided"
STALE = "stale"
STATUSES = (UNDECIDED, "accepted", "edited", "rejected", "flagged", STALE)


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
