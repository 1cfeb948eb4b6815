"""The dataset card: what went in, what came out, and how clean the split is (JSON + Markdown)."""

from __future__ import annotations

from collections import Counter

from personaforge.config import RECORD_TYPES


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


def render_markdown(card: dict) -> str:
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
