"""report.md for one evaluation: summary with intervals, per-persona table, best and worst samples."""

from __future__ import annotations

SUMMARY = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "semantic_similarity", "length_ratio", "distinct_2")


def _cell(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value) -> str:
    return "n/a (too few samples)" if value is None else f"{value:.3f}"


def ranked(rows: list[dict], metric: str = "rouge1") -> list[dict]:
    """Samples from worst to best by a per-sample score; ties in id order, so the choice is reproducible."""
    return sorted(rows, key=lambda r: (float((r.get("scores") or {}).get(metric, 0.0)), str(r.get("id"))))


def best_median_worst(rows: list[dict], metric: str = "rouge1") -> list[tuple[str, dict]]:
    """The best, median and worst sample by ``metric`` (fewer when there are fewer samples)."""
    order = ranked(rows, metric)
    if not order:
        return []
    picks = [("best", order[-1]), ("median", order[(len(order) - 1) // 2]), ("worst", order[0])]
    seen: set[int] = set()
    return [(label, row) for label, row in picks if not (id(row) in seen or seen.add(id(row)))]


def render_report(metrics: dict, rows: list[dict]) -> str:
    meta = metrics.get("meta", {})
    kind = "untuned baseline" if meta.get("baseline") else "fine-tuned"
    out = [f"# Evaluation: {meta.get('run')} ({kind}, split {meta.get('split')})", ""]
    out.append(f"Model `{meta.get('model')}`, {meta.get('samples')} samples, prompt style {meta.get('prompt_style')},"
               f" generation {meta.get('generation')}.")
    out += ["", "## Summary (95% bootstrap intervals)", "", "| metric | value | 95% CI |", "|---|---:|---|"]
    for key in SUMMARY:
        if key in metrics:
            lo, hi = metrics["ci"].get(key, (None, None))
            ci = f"[{lo:.3f}, {hi:.3f}]" if lo is not None else ""
            out.append(f"| {key} | {metrics[key]:.3f} | {ci} |")
    level = metrics.get("real_answer_level") or {}
    if level:
        out += ["", "For scale: the same person's real training answers, said to other questions, score "
                + _level_parts(level) + " against these references (`real_answer_level`)."]
    found = metrics.get("retrieval_level") or {}
    if found:
        out += ["", "The one real training answer of the same person that best fits each question (what a search of"
                " their own words would find) scores " + _level_parts(found) + " (`retrieval_level`)."]
    attribution = metrics.get("attribution", {})
    out += ["", "## Persona attribution", "",
            f"A classifier trained on the training answers attributes **{attribution.get('accuracy', 0):.2f}** of the"
            f" generated answers to the right persona (macro-F1 {attribution.get('macro_f1', 0):.2f}; on the real"
            f" reference answers: {attribution.get('reference_accuracy', 0):.2f}). Blending index"
            f" {_number(attribution.get('blending_index'))} (lower = more distinct personas).", ""]
    confusion = attribution.get("confusion")
    if confusion:
        labels = confusion["labels"]
        out.append("| asked \\ attributed | " + " | ".join(labels) + " |")
        out.append("|---|" + "---:|" * len(labels))
        for label, row in zip(labels, confusion["matrix"]):
            out.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
        out.append("")
    per_persona = metrics.get("per_persona", {})
    if per_persona:
        out += ["## Per persona", "", "| persona | samples | rouge1 | rougeL | semantic_similarity |", "|---|---:|---:|---:|---:|"]
        for persona, values in per_persona.items():
            out.append(f"| {persona} | {values.get('samples')} | {values['rouge1']:.3f} | {values['rougeL']:.3f} |"
                       f" {values['semantic_similarity']:.3f} |")
        out.append("")
    order = ranked(rows)
    for title, chosen in (("Best samples", order[::-1][:3]), ("Worst samples", order[:3])):
        out += [f"## {title} (ROUGE-1)", "", "| id | persona | rouge1 | expected | prediction |", "|---|---|---:|---|---|"]
        for row in chosen:
            out.append(f"| {row['id']} | {row['persona']} | {row['scores'].get('rouge1', 0):.3f} | {_cell(row['expected'])}"
                       f" | {_cell(row['prediction']) or '*(empty)*'} |")
        out.append("")
    return "\n".join(out)


def _level_parts(level: dict) -> str:
    return " and ".join(f"{key} {v['value']:.3f} [{v['ci'][0]:.3f}, {v['ci'][1]:.3f}]" for key, v in level.items())
