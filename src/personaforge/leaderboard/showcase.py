"""Answers side by side: what the leaderboard's numbers mean, in the persona's words.

For each eval set, the best fine-tuned run and its untuned baseline answer the same eval questions. Per persona,
three questions are shown (the fine-tuned run's best, median and worst sample by a per-sample score, chosen as
the eval report.md chooses its samples), each with the person's real answer and both models' answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from personaforge.evaluate.report import best_median_worst

# Ranking samples by a 0/1 score picks arbitrary ones; these say how close an answer came.
FALLBACK_METRICS = ("semantic_similarity", "rouge1")


@dataclass
class Sample:
    pick: str  # best | median | worst
    id: str
    question: str
    real: str
    answer: str
    score: float | None
    baseline_answer: str | None
    baseline_score: float | None


@dataclass
class Showcase:
    run: str
    baseline: str | None
    metric: str
    personas: dict[str, list[Sample]] = field(default_factory=dict)


def _question(row: dict) -> str:
    if row.get("question"):
        return str(row["question"])
    prompt = str(row.get("prompt", ""))  # results written before rows named their question
    return prompt[-300:].strip()


def _score(row: dict | None, metric: str) -> float | None:
    value = ((row or {}).get("scores") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def _selection_metric(rows: Sequence[dict], metric: str) -> str | None:
    # Attribution scores say which persona an answer sounds like (cross_attribution: the probes' answers, not
    # the one shown), too coarse to pick a best, median and worst answer by.
    for name in ([metric] if metric not in ("attribution", "cross_attribution") else []) + list(FALLBACK_METRICS):
        if rows and all(_score(row, name) is not None for row in rows):
            return name
    return None


def build_showcase(entries: Sequence[Any], metric: str) -> Showcase | None:
    """``entries``: one eval set's entries, best first. None when no fine-tuned entry has predictions."""
    tuned = next((e for e in entries if not e.baseline and e.predictions), None)
    if tuned is None:
        return None
    baseline = next((e for e in entries if e.baseline and e.run_dir == tuned.run_dir and e.predictions), None)
    chosen = _selection_metric(tuned.predictions, metric)
    if chosen is None:
        return None
    theirs = {str(row.get("id")): row for row in (baseline.predictions if baseline else [])}
    showcase = Showcase(tuned.label, baseline.label if baseline else None, chosen)
    by_persona: dict[str, list[dict]] = {}
    for row in tuned.predictions:
        by_persona.setdefault(str(row.get("persona")), []).append(row)
    for persona in sorted(by_persona):
        samples = []
        for pick, row in best_median_worst(by_persona[persona], chosen):
            other = theirs.get(str(row.get("id")))
            samples.append(Sample(pick, str(row.get("id")), _question(row), str(row.get("expected", "")),
                                  str(row.get("prediction", "")), _score(row, chosen),
                                  None if other is None else str(other.get("prediction", "")), _score(other, chosen)))
        showcase.personas[persona] = samples
    return showcase


def _quote(text: str) -> str:
    return " ".join(text.split()) or "*(empty answer)*"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def showcase_markdown(showcase: Showcase) -> list[str]:
    against = f" and its untuned baseline ({showcase.baseline})" if showcase.baseline else ""
    out = [f"Answers of {showcase.run}{against}, per persona: the best, median and worst sample by"
           f" {showcase.metric}.", ""]
    for persona, samples in showcase.personas.items():
        out += [f"#### {persona}", ""]
        for s in samples:
            scores = f"{showcase.metric} {_fmt(s.score)}" + (f", baseline {_fmt(s.baseline_score)}"
                                                             if s.baseline_answer is not None else "")
            out += [f"**{s.pick}** (`{s.id}`; {scores})", "", f"> **Question:** {_quote(s.question)}", ">",
                    f"> **Real answer:** {_quote(s.real)}", ">", f"> **Fine-tuned:** {_quote(s.answer)}"]
            if s.baseline_answer is not None:
                out += [">", f"> **Baseline:** {_quote(s.baseline_answer)}"]
            out.append("")
    return out
