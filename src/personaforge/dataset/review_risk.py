"""The risk score the studio sorts records by, most likely bad first, from the data stage's own signals."""

from __future__ import annotations

import re

from personaforge.dataset.review_log import TRANSCRIPT, record_text

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
