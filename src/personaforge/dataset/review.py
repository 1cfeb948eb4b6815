"""Review decisions: the person who knows the material accepts, edits, rejects or flags records (`persona studio`),
and every later build applies what they decided.

The review file lives beside the dataset folder, never inside it (default ``<out>.review.jsonl``), so a rebuild
never loses it. A record's decision is its latest one that was not undone; earlier ones stay in the file (two browser
tabs deciding on one record: both are kept, the later wins). A decision applies only to the record it was made on,
identified by its id and the hash of its text; when the text changed the decision is stale and not applied.

This module is the review's public face (the build, the studio and the command line import from here); the work is
done in three modules:
- ``review_log``: the append-only review file (its line format, torn-line tolerance, undo) and the record text
  that decisions are hashed on;
- ``review_apply``: matching decisions to a build's records (stale, moved, orphaned), applying them, progress counts
  and the dataset card's review section;
- ``review_risk``: the score the studio sorts records by.
"""

from __future__ import annotations

from personaforge.dataset.review_apply import (COUNTED, STALE, STATUSES, UNDECIDED, Match, Matching, Outcome,
                                               Reviewed, apply_decisions, match_decisions, progress_table,
                                               review_summary, synthesized, totals, with_text)
from personaforge.dataset.review_log import (ACTIONS, MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, MAX_REASON_CHARS,
                                             STATUS_OF, TRANSCRIPT, UNDO, Decision, NothingToUndo, RecordText,
                                             ReviewError, ReviewLog, decision_event, default_review_path,
                                             load_review, record_hash, record_text, review_path, text_hash)
from personaforge.dataset.review_risk import CAPS_LABEL, risk

__all__ = [
    "ACTIONS", "CAPS_LABEL", "COUNTED", "MAX_ANSWER_CHARS", "MAX_QUESTION_CHARS", "MAX_REASON_CHARS", "STALE",
    "STATUSES", "STATUS_OF", "TRANSCRIPT", "UNDECIDED", "UNDO", "Decision", "Match", "Matching", "NothingToUndo",
    "Outcome", "RecordText", "ReviewError", "ReviewLog", "Reviewed", "apply_decisions", "decision_event",
    "default_review_path", "load_review", "match_decisions", "progress_table", "record_hash", "record_text", "risk",
    "review_path", "review_summary", "synthesized", "text_hash", "totals", "with_text",
]
