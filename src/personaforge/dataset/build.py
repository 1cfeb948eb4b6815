"""`persona data build`: transcripts + persona cards → train.jsonl, eval.jsonl and the dataset card."""

from __future__ import annotations

import hashlib
import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from personaforge import __version__
from personaforge.config import DataConfig
from personaforge.dataset.card import counts_table, lengths, quality_section, render_markdown
from personaforge.dataset.leakage import find_leaks
from personaforge.dataset.records import generate_records
from personaforge.dataset.retrieval import Retriever
from personaforge.dataset.review import apply_decisions, load_review, review_path
from personaforge.dataset.salience import Salience
from personaforge.dataset.segments import build_segments
from personaforge.dataset.split import split_segments
from personaforge.dataset.teacher import TeacherClient
from personaforge.dataset.writers import TeacherWriter, TemplateWriter
from personaforge.embeddings import default_embedder
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, dumps_json, dumps_jsonl, read_bytes
from personaforge.personas import Roster, load_cards
from personaforge.redaction import redact_url
from personaforge.transcripts import Transcript, discover, parse_file

# candidates.jsonl: every record as generated, before review decisions (what `persona studio` shows)
OUTPUT_FILES = ("train.jsonl", "eval.jsonl", "dataset_card.json", "dataset_card.md", "candidates.jsonl")


class Progress:
    """Progress reporting the CLI plugs a progress bar into; silent by default."""

    def task(self, description: str, total: int) -> Callable[[], None]:
        return lambda: None

    def warn(self, message: str) -> None:
        pass


@dataclass
class BuildResult:
    out: Path
    card: dict
    train: list[dict]
    eval: list[dict]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(read_bytes(path)).hexdigest()


def parse_transcripts(config: DataConfig, roster: Roster, progress: Progress) -> list[Transcript]:
    if not config.transcripts:
        raise PersonaForgeError("no transcripts given; pass --transcripts FILE_OR_FOLDER (or set transcripts: in the config)")
    files = discover([Path(p) for p in config.transcripts])
    tick = progress.task("parsing transcripts", len(files))
    transcripts = []
    for path in files:
        transcripts.append(parse_file(path, config.format, roster.known_labels))
        tick()
    return transcripts


def build_dataset(config: DataConfig, progress: Progress | None = None, write: bool = True) -> BuildResult:
    progress = progress or Progress()
    loaded_cards = load_cards([Path(p) for p in config.personas])
    roster = Roster(loaded_cards)
    transcripts = parse_transcripts(config, roster, progress)
    warnings = [w for t in transcripts for w in t.warnings]
    segmented = build_segments(transcripts, roster, config)
    if not segmented.segments:
        labels = sorted(segmented.unassigned, key=lambda label: -segmented.unassigned[label].words)[:6]
        raise PersonaForgeError(
            "no persona speech found: no speaker label matches a persona card"
            f" (labels seen: {', '.join(labels) or 'none'}); add them as aliases (persona data speakers lists them)"
        )
    warnings.extend(segmented.warnings)
    split = split_segments(segmented.segments, config.eval_fraction, config.seed)
    warnings.extend(split.warnings)
    salience = Salience((s.answer for s in segmented.segments),
                        ignore=[label for card in roster.personas for label in card.labels])
    retriever = Retriever(default_embedder(), salience)
    retriever.calibrate(segmented.segments, config.seed)  # the fit threshold, from this build's real Q/A pairs
    writer: TemplateWriter
    if config.teacher is not None:
        writer = TeacherWriter(retriever, config.seed, TeacherClient(config.teacher))
    else:
        writer = TemplateWriter(retriever, config.seed)
    work = len(segmented.segments) + sum(len(c.topics) for c in roster.personas) + len(config.contrastive_questions)
    records = generate_records(segmented.segments, split, roster, config, writer, retriever,
                               progress.task("writing records", work))
    if isinstance(writer, TeacherWriter) and writer.fallbacks:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(writer.rejected.items()))
        warnings.append(f"teacher: {writer.fallbacks} of {writer.asked} response(s) failed the checks ({reasons});"
                        " the offline question was used for those records, or none was written")
    candidates = [{**r.to_json(), "split": "train"} for r in records.train] + \
                 [{**r.to_json(), "split": "eval"} for r in records.eval]
    # The reviewer's decisions: rejected records go, edits replace the text (an edited eval record stays in eval).
    reviewed = apply_decisions(candidates, load_review(review_path(config)), config.require_review)
    warnings.extend(reviewed.warnings)
    train, evaluation = reviewed.split("train"), reviewed.split("eval")
    leaks = find_leaks([(r["id"], r["completion"]) for r in evaluation], [(r["id"], r["completion"]) for r in train])
    over = [leak for leak in leaks if leak.length > config.max_leak_ngram]
    if over:
        first = over[0]
        raise PersonaForgeError(
            f"leakage: eval record '{first.eval_id}' shares {first.length} words with train record '{first.train_id}'"
            f" (\"{first.text}\"); {len(over)} eval record(s) over the limit of {config.max_leak_ngram} —"
            " remove the repeated passage from one transcript or raise max_leak_ngram"
        )
    for persona in roster.personas:
        if not any(r["persona"] == persona.name for r in train):
            warnings.append(f"persona '{persona.name}' has no training record: no speaker label in the transcripts matches it")
    card = _card(config, roster, loaded_cards, transcripts, segmented, train, evaluation, leaks, records, warnings)
    card["quality"] = quality_section(records.quality, retriever.calibration, segmented, train, evaluation,
                                      writer.report(), config.seed)
    card["review"] = reviewed.card_section()
    out = Path(config.out)
    if write:
        write_outputs(out, {
            "train.jsonl": dumps_jsonl(train),
            "eval.jsonl": dumps_jsonl(evaluation),
            "dataset_card.json": dumps_json(card),
            "dataset_card.md": render_markdown(card, train + evaluation),
            "candidates.jsonl": dumps_jsonl(candidates),
        })
    for warning in warnings:
        progress.warn(warning)
    return BuildResult(out, card, train, evaluation)


def _card(config, roster, loaded_cards, transcripts, segmented, train, evaluation, leaks, records, warnings) -> dict:
    card_files = sorted({entry.source.rsplit(":", 1)[0] for entry in loaded_cards})
    # The card describes content, not where it was written: the same inputs give the same bytes anywhere.
    settings = config.model_dump(mode="json", exclude={"out"})
    if settings.get("teacher"):
        settings["teacher"].pop("api_key_env", None)
        settings["teacher"]["url"] = redact_url(settings["teacher"]["url"])  # ?key=... must not be published
    shared = [leak.length for leak in leaks]
    shared += [0] * (len(evaluation) - len(shared))
    return {
        "personaforge_version": __version__,
        "seed": config.seed,
        "eval_fraction": config.eval_fraction,
        "eval_types": list(config.eval_types),
        "formats": ["prompt_completion", "messages"],
        "totals": {"train": len(train), "eval": len(evaluation), "segments": len(segmented.segments),
                   "held_out_derived_not_written": records.held_out_derived,
                   "skipped_short_segments": segmented.skipped_short},
        "counts": {"train": counts_table(train), "eval": counts_table(evaluation)},
        "lengths": {"train": lengths(train), "eval": lengths(evaluation)},
        "leakage": {
            "limit": config.max_leak_ngram,
            "max_shared_ngram": max(shared, default=0),
            "median_shared_ngram": statistics.median(shared) if shared else 0,
            "top": [{"eval": l.eval_id, "train": l.train_id, "length": l.length, "text": l.text} for l in leaks[:5]],
        },
        "unassigned_speakers": [
            {"label": label, "turns": stats.turns, "words": stats.words, "files": sorted(stats.files)}
            for label, stats in sorted(segmented.unassigned.items(), key=lambda item: (-item[1].words, item[0]))
        ],
        "inputs": {
            "transcripts": [{"file": t.source, "format": t.format, "encoding": t.encoding, "turns": len(t.turns),
                             "sha256": sha256_of(Path(t.source))} for t in transcripts],
            "persona_cards": [{"file": f, "sha256": sha256_of(Path(f))} for f in card_files],
        },
        "personas": [{"name": c.name, "aliases": c.aliases, "topics": c.topics, "consent": c.consent,
                      "source": c.source, "system_prompt": c.prompt_text()} for c in roster.personas],
        "config": settings,
        "warnings": warnings,
    }


def write_outputs(out: Path, files: dict[str, str]) -> None:
    """Write every file to a temporary name first, then rename them all: a failure leaves the old dataset."""
    if out.exists() and not out.is_dir():
        raise PersonaForgeError(f"{display_path(out)}: exists and is not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        temporary: list[tuple[str, Path]] = []
        try:
            for name, text in files.items():
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out)
                temporary.append((tmp, out / name))
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
            for tmp, final in temporary:
                os.replace(tmp, final)
        finally:
            for tmp, _ in temporary:
                Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise PersonaForgeError(f"{display_path(out)}: cannot write the dataset ({exc.strerror}); check --out") from None
