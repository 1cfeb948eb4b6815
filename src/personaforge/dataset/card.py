"""The dataset card: what went in, what came out, and how clean the split is (JSON + Markdown)."""

from __future__ import annotations

from collections import Counter

from personaforge.config import RECORD_TYPES
from personaforge.dataset.records import DROP_REASONS, Quality, sample_ids
from personaforge.dataset.retrieval import Calibration, quantiles
from personaforge.dataset.segments import SegmentResult

SAMPLES_PER_TYPE = 10
FIT_EXPLANATION = (
    "Fit is the cosine similarity of the all-MiniLM-L6-v2 embeddings of a question and of an answer's opening (its"
    " sentences within the first 60 words: an answer responds where it starts). A written question is paired with"
    " a passage of the persona's own words only when their fit reaches the threshold. The threshold is calibrated"
    " on this build's real interviewer question → answer pairs: each real question is also scored against four"
    " other answers of the same persona (mismatched pairs), and the threshold is the fit that only 5% of the"
    " mismatched pairs reach (their 95th percentile), or 0.30 if that is lower. A passage that fits a question that"
    " well is unlikely to be the answer to something else. Retrieval then takes, of the passages that speak of the question's subject in their first two"
    " sentences and can stand alone, the one that fits best."
)


def percentiles(values: list[int]) -> dict[str, int]:
    if not values:
        return {"min": 0, "p10": 0, "p50": 0, "p90": 0, "max": 0}
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]

    return {"min": ordered[0], "p10": at(0.1), "p50": at(0.5), "p90": at(0.9), "max": ordered[-1]}


def counts_table(rows: list[dict]) -> dict[str, dict[str, int]]:
    table: dict[str, Counter] = {}
    for row in rows:
        table.setdefault(row["persona"], Counter())[row["type"]] += 1
    return {persona: {t: counts.get(t, 0) for t in RECORD_TYPES} for persona, counts in sorted(table.items())}


def lengths(rows: list[dict]) -> dict[str, dict[str, int]]:
    return {
        "prompt_words": percentiles([len(r["prompt"].split()) for r in rows]),
        "completion_words": percentiles([len(r["completion"].split()) for r in rows]),
    }


def render_markdown(card: dict, records: list[dict] | None = None) -> str:
    out = ["# Dataset card", ""]
    out.append(f"Built by personaforge {card['personaforge_version']} with seed {card['seed']}, eval fraction "
               f"{card['eval_fraction']} (eval holds: {', '.join(card['eval_types'])}).")
    out.append("")
    out.append(f"**{card['totals']['train']} train / {card['totals']['eval']} eval records** from "
               f"{card['totals']['segments']} source segments of {len(card['personas'])} personas.")
    out.append("")
    for split in ("train", "eval"):
        out.append(f"## {split.capitalize()} records (persona × type)")
        out.append("")
        out.append("| persona | " + " | ".join(RECORD_TYPES) + " | total |")
        out.append("|---|" + "---:|" * (len(RECORD_TYPES) + 1))
        for persona, counts in card["counts"][split].items():
            cells = [str(counts[t]) for t in RECORD_TYPES]
            out.append(f"| {persona} | " + " | ".join(cells) + f" | {sum(counts.values())} |")
        out.append("")
    out.append("## Lengths (words)")
    out.append("")
    out.append("| split | field | min | p10 | p50 | p90 | max |")
    out.append("|---|---|---:|---:|---:|---:|---:|")
    for split in ("train", "eval"):
        for field, stats in card["lengths"][split].items():
            out.append(f"| {split} | {field} | " + " | ".join(str(stats[k]) for k in ("min", "p10", "p50", "p90", "max")) + " |")
    out.append("")
    leak = card["leakage"]
    out.append("## Leakage check")
    out.append("")
    out.append(f"Longest word n-gram an eval completion shares with any train completion: **{leak['max_shared_ngram']}** "
               f"(limit {leak['limit']}; median over eval records {leak['median_shared_ngram']}).")
    if leak["top"]:
        out.append("")
        out.append("| eval record | train record | words | shared text |")
        out.append("|---|---|---:|---|")
        for row in leak["top"]:
            out.append(f"| {row['eval']} | {row['train']} | {row['length']} | {row['text']} |")
    out.append("")
    if "quality" in card:
        out.extend(_quality_markdown(card, {r["id"]: r for r in records or []}))
    if "review" in card:
        out.extend(_review_markdown(card["review"]))
    out.append("## Unassigned speakers")
    out.append("")
    if card["unassigned_speakers"]:
        out.append("Speaker labels that no persona card claims (their turns still serve as questions):")
        out.append("")
        out.append("| label | turns | words |")
        out.append("|---|---:|---:|")
        for row in card["unassigned_speakers"]:
            out.append(f"| {row['label']} | {row['turns']} | {row['words']} |")
    else:
        out.append("None: every speaker label belongs to a card.")
    out.append("")
    out.append("## Inputs")
    out.append("")
    out.append("| file | format | encoding | turns | sha256 |")
    out.append("|---|---|---|---:|---|")
    for row in card["inputs"]["transcripts"]:
        out.append(f"| {row['file']} | {row['format']} | {row['encoding']} | {row['turns']} | `{row['sha256'][:16]}…` |")
    for row in card["inputs"]["persona_cards"]:
        out.append(f"| {row['file']} | persona card | utf-8 | | `{row['sha256'][:16]}…` |")
    out.append("")
    out.append("## Personas")
    out.append("")
    for persona in card["personas"]:
        out.append(f"- **{persona['name']}** ({', '.join(persona['topics'])}). Consent: {persona['consent'] or 'not recorded'}")
    if card["warnings"]:
        out.append("")
        out.append("## Warnings")
        out.append("")
        out.extend(f"- {w}" for w in card["warnings"])
    out.append("")
    return "\n".join(out)


def quality_section(quality: Quality, calibration: Calibration, segmented: SegmentResult, train: list[dict],
                    evaluation: list[dict], teacher: dict | None, seed: int) -> dict:
    types = {}
    for record_type, entry in quality.types.items():
        types[record_type] = {
            "generated": entry.generated,
            "kept": entry.kept,
            "dropped": {reason: entry.dropped.get(reason, 0) for reason in DROP_REASONS},
            "fit": quantiles(entry.fits),
            "questions": {k: v for k, v in sorted(entry.asked_by.items()) if v},
        }
    kept = train + evaluation
    real = sum(1 for r in evaluation if r["source"].get("question") == "transcript")
    later = segmented.later_chunks
    return {
        "principle": "A record that is not good is worse than no record: a written question is kept only with a"
                     " passage of the persona's own words that answers it.",
        "types": types,
        "fit": {**calibration.to_json(), "explanation": FIT_EXPLANATION},
        "chunks": {"later_chunks": later, "starting_dangling": segmented.later_chunks_dangling,
                   "share_dangling": round(segmented.later_chunks_dangling / later, 3) if later else 0.0},
        "mixed_speaker_cuts": segmented.mixed_speakers,
        "eval_real_questions": {"records": len(evaluation), "with_real_question": real},
        "teacher": teacher,
        "samples": sample_ids(kept, SAMPLES_PER_TYPE, seed),
    }


def _quality_markdown(card: dict, records: dict[str, dict]) -> list[str]:
    quality = card["quality"]
    out = ["## Quality", "", quality["principle"], ""]
    out.append("| type | generated | kept | " + " | ".join(f"dropped: {r}" for r in DROP_REASONS) +
               " | fit p10 | fit p50 | fit p90 |")
    out.append("|---|---:|---:|" + "---:|" * len(DROP_REASONS) + "---:|---:|---:|")
    for record_type, entry in quality["types"].items():
        fit = entry["fit"]
        cells = [str(entry["generated"]), str(entry["kept"]), *(str(entry["dropped"][r]) for r in DROP_REASONS),
                 *(f"{fit[q]:.2f}" if q in fit else "" for q in ("p10", "p50", "p90"))]
        out.append(f"| {record_type} | " + " | ".join(cells) + " |")
    out.append("")
    asked = "; ".join(f"{t}: " + ", ".join(f"{n} {k}" for k, n in e["questions"].items())
                      for t, e in quality["types"].items() if e["questions"])
    out.append(f"Where the questions come from: {asked}.")
    out.append("")
    fit = quality["fit"]
    out.append("### Question/answer fit")
    out.append("")
    out.append(fit["explanation"])
    out.append("")
    out.append(f"Threshold **{fit['threshold']:.3f}** ({fit['method']}), from {fit['real_pairs']} real pairs.")
    if fit["real_fit"]:
        out.append("")
        out.append("| pairs | p10 | p25 | p50 | p75 | p90 | at or above the threshold |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, key, share in (("real question → its answer", "real_fit", "real_at_or_above"),
                                 ("real question → another answer", "mismatched_fit", "mismatched_at_or_above")):
            q = fit[key]
            out.append(f"| {name} | " + " | ".join(f"{q[k]:.2f}" for k in ("p10", "p25", "p50", "p75", "p90"))
                       + f" | {fit[share]:.0%} |")
    out.append("")
    chunks = quality["chunks"]
    out.append(f"Chunk boundaries: {chunks['starting_dangling']} of {chunks['later_chunks']} later chunks of long turns "
               f"({chunks['share_dangling']:.1%}) still open with a sentence that refers back; each such chunk is"
               " written with the chunk before it as the persona's earlier turn.")
    if quality["mixed_speaker_cuts"]:
        out.append(f" {quality['mixed_speaker_cuts']} turn(s) held another speaker's label or a timestamp and were cut"
                   " there (see the warnings).")
    real = quality["eval_real_questions"]
    out.append("")
    out.append(f"Eval: {real['with_real_question']} of {real['records']} eval records have a real interviewer question.")
    teacher = quality.get("teacher")
    if teacher:
        fell = ", ".join(f"{n} {reason}" for reason, n in teacher["fell_back"].items()) or "none"
        out.append("")
        out.append(f"Teacher ({teacher['model']}): {teacher['asked']} questions asked, {teacher['accepted']} passed the"
                   f" checks; fell back to offline: {fell}.")
    out.append("")
    out.append(f"### {SAMPLES_PER_TYPE} random kept records per type")
    for record_type, ids in quality["samples"].items():
        out.append("")
        out.append(f"#### {record_type}")
        for record_id in ids:
            record = records.get(record_id)
            if record is None:
                continue
            messages = record["messages"]
            turns = [m for m in messages if m["role"] != "system"]
            fit = record["source"].get("fit")
            out.append("")
            out.append(f"`{record_id}`" + (f" (fit {fit:.2f})" if fit is not None else ""))
            out.append("")
            for message in turns:
                who = "Q" if message["role"] == "user" else "A"
                out.append(f"> **{who}:** {message['content']}")
                out.append(">")
            out.pop()
    out.append("")
    return out


REVIEW_COLUMNS = ("reviewed", "accepted", "edited", "rejected", "flagged", "stale", "applied", "dropped_unreviewed")


def _review_markdown(review: dict) -> list[str]:
    totals = review["totals"]
    out = ["## Review", ""]
    if not review["decisions"] and not review["require_review"]:
        return [*out, "No review decisions yet: review the records with `persona studio`; every build applies the"
                      " decisions.", ""]
    out.append(f"{totals['reviewed']} of {totals['total']} records reviewed in `persona studio`; {totals['applied']}"
               f" decision(s) applied, {totals['stale']} stale (the record's text changed since: not applied),"
               f" {totals['orphaned']} for records this build no longer has."
               + (" `require_review` is on: synthesized records count only when accepted or edited"
                  f" ({totals['dropped_unreviewed']} dropped unreviewed)." if review["require_review"] else ""))
    out.append("")
    out.append("| persona | type | total | " + " | ".join(c.replace("_", " ") for c in REVIEW_COLUMNS) + " |")
    out.append("|---|---|---:|" + "---:|" * len(REVIEW_COLUMNS))
    for persona, types in review["by_persona_type"].items():
        for record_type, row in types.items():
            out.append(f"| {persona} | {record_type} | {row['total']} | "
                       + " | ".join(str(row[c]) for c in REVIEW_COLUMNS) + " |")
    for entry in review["stale"]:
        out.append("")
        out.append(f"Stale: `{entry['id']}` ({entry['action']} at {entry['at']}): was \"{entry['old']['answer']}\","
                   f" now \"{entry['new']['answer']}\".")
    out.append("")
    return out
