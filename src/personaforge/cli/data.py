"""`persona data build | validate | stats | speakers`: datasets from transcripts, and checks of them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from personaforge.cli.app import data_app
from personaforge.cli.console import console, err_console
from personaforge.cli.progress import RichProgress
from personaforge.config import RECORD_TYPES, TeacherConfig, load_data_config, validate_config
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.transcripts import FORMAT_HELP, FORMATS


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise PersonaForgeError(f"--format '{fmt}': unknown; use one of {', '.join(FORMATS)}")
    return fmt


@data_app.command("build")
def data_build(
    config: Annotated[Optional[Path], typer.Argument(help="Data config YAML (flags override it).")] = None,
    transcripts: Annotated[Optional[list[Path]], typer.Option("--transcripts", "-t",
                           help="Transcript file or folder (searched recursively); repeatable.")] = None,
    personas: Annotated[Optional[list[Path]], typer.Option("--personas", "-p",
                        help="Persona card YAML or a folder of them; repeatable.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default: data/default).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Split and template seed (default: 0).")] = None,
    eval_fraction: Annotated[Optional[float], typer.Option(
        help="Fraction of each persona's source segments held out (default: 0.12).")] = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help=FORMAT_HELP)] = None,
    redact_others: Annotated[Optional[bool], typer.Option("--redact-others/--no-redact-others",
                             help="Replace other speakers' self-introductions with their role.")] = None,
    teacher_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible server that writes questions and paraphrases.")] = None,
    teacher_model: Annotated[Optional[str], typer.Option(help="Model name on the teacher server.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Config override key=value; repeatable.")] = None,
) -> None:
    """Build train.jsonl, eval.jsonl and a dataset card from transcripts and persona cards."""
    from personaforge.dataset.build import build_dataset

    cfg, _ = load_data_config(config, overrides or [])
    updates: dict = {}
    if transcripts:
        updates["transcripts"] = [str(p) for p in transcripts]
    if personas:
        updates["personas"] = [str(p) for p in personas]
    if out is not None:
        updates["out"] = str(out)
    if seed is not None:
        updates["seed"] = seed
    if eval_fraction is not None:
        updates["eval_fraction"] = eval_fraction
    if fmt is not None:
        updates["format"] = _check_format(fmt)
    if redact_others is not None:
        updates["redact_others"] = redact_others
    if (teacher_url is None) != (teacher_model is None):
        raise PersonaForgeError("--teacher-url and --teacher-model go together; give both or neither")
    if teacher_url is not None:
        base = cfg.teacher.model_dump() if cfg.teacher else {}
        updates["teacher"] = validate_config(TeacherConfig, {**base, "url": teacher_url, "model": teacher_model},
                                             label="--teacher-url/--teacher-model")
    cfg = validate_config(type(cfg), {**cfg.model_dump(), **updates}, label="options")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        result = build_dataset(cfg, RichProgress(bar))
    card = result.card
    table = Table(title=f"{display_path(result.out)}: {card['totals']['train']} train / {card['totals']['eval']} eval records")
    table.add_column("persona")
    for record_type in RECORD_TYPES:
        table.add_column(record_type, justify="right")
    table.add_column("eval", justify="right")
    for persona, counts in card["counts"]["train"].items():
        held = sum(card["counts"]["eval"].get(persona, {}).values())
        table.add_row(persona, *(str(counts[t]) for t in RECORD_TYPES), str(held))
    console.print(table)
    leak = card["leakage"]
    console.print(f"leakage: longest shared eval/train n-gram {leak['max_shared_ngram']} words (limit {leak['limit']})")
    if card["unassigned_speakers"]:
        listed = ", ".join(f"{u['label']} ({u['words']} words)" for u in card["unassigned_speakers"][:8])
        more = len(card["unassigned_speakers"]) - 8
        console.print(f"unassigned speakers: {listed}" + (f", and {more} more" if more > 0 else ""))
    console.print(f"dataset: {display_path(result.out)}")


@data_app.command("validate")
def data_validate(
    file: Annotated[Path, typer.Argument(help="A .jsonl file of records, or a folder of them (TRAIN).")],
    max_length: Annotated[Optional[int], typer.Option(help="Flag samples longer than this many tokens (needs --model).")] = None,
    model: Annotated[Optional[str], typer.Option(help="Tokenizer to count tokens with (local folder or hub id).")] = None,
    eval_path: Annotated[Optional[Path], typer.Option("--eval", help="The eval records (a .jsonl file or a folder):"
                         " also checks each eval answer against the training answers for leakage.")] = None,
    max_leak_ngram: Annotated[int, typer.Option(help="Longest run of words an eval answer may share with a training"
                              " answer (as in persona data build).")] = 8,
    allow_leaks: Annotated[bool, typer.Option("--allow-leaks", help="Report leaks without failing (exit 0 unless a"
                           " record has a problem).")] = False,
) -> None:
    """Check JSONL files: one FILE:LINE problem per line, then a count; exit 2 if any. With --eval, also the
    cross-split leakage check: the eval/train pairs that share more than --max-leak-ngram words in a row."""
    from personaforge.dataset.validate import tokenizer_counter, validate_paths

    if max_length is not None and model is None:
        raise PersonaForgeError("--max-length needs --model to count tokens")
    if max_length is not None and max_length < 1:
        raise PersonaForgeError("--max-length must be a positive number of tokens")
    if max_leak_ngram < 1:
        raise PersonaForgeError("--max-leak-ngram must be at least 1 word")
    counter = tokenizer_counter(model) if model is not None and max_length is not None else None
    result = validate_paths(file, eval_path, counter, max_length, max_leak_ngram)
    for problem in result.problems:
        print(problem)
    records = result.train_records + result.eval_records
    counted = f"{result.train_records} train + {result.eval_records} eval record(s)" if eval_path else f"{records} record(s)"
    failed = bool(result.problems)
    if eval_path is not None:
        for leak in result.leaks:
            print(f"{leak.eval_id}: leak: shares {leak.length} words in a row with {leak.train_id}: \"{leak.text}\"")
        longest = max(result.shared, default=0)
        at_limit = sum(1 for n in result.shared if n >= max_leak_ngram)
        print(f"leakage: {len(result.leaks)} of {len(result.shared)} eval answer(s) share more than {max_leak_ngram}"
              f" words in a row with a training answer ({at_limit} share {max_leak_ngram} or more; longest"
              f" {longest})" + ("; fix the split: move each pair to one side, or rebuild it with persona data build"
                               if result.leaks else ""))
        failed = failed or (bool(result.leaks) and not allow_leaks)
    if result.problems:
        print(f"{len(result.problems)} problem(s) in {counted}")
    elif failed:
        print(f"{counted}: no record problems; the leakage check failed (--allow-leaks reports without failing)")
    else:
        print(f"ok: {counted}, no problems")
    if failed:
        raise typer.Exit(2)


@data_app.command("stats")
def data_stats(folder: Annotated[Path, typer.Argument(help="A dataset folder (train.jsonl, eval.jsonl).")]) -> None:
    """Counts per persona × record type, and length percentiles."""
    from personaforge.dataset.stats import dataset_stats

    stats = dataset_stats(folder)
    for split in ("train", "eval"):
        table = Table(title=f"{split}: {stats[split]['records']} records")
        table.add_column("persona")
        for record_type in RECORD_TYPES:
            table.add_column(record_type, justify="right")
        for persona, counts in stats[split]["counts"].items():
            table.add_row(persona, *(str(counts[t]) for t in RECORD_TYPES))
        console.print(table)
        for field, p in stats[split]["lengths"].items():
            console.print(f"  {field}: p10 {p['p10']}  median {p['p50']}  p90 {p['p90']}  max {p['max']}")


@data_app.command("speakers")
def data_speakers(
    transcripts: Annotated[list[Path], typer.Argument(help="Transcript files or folders.")],
    personas: Annotated[Optional[list[Path]], typer.Option("--personas", "-p", help="Cards, to show who is who.")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "auto",
) -> None:
    """Show each file's detected format, then every speaker label with turn and word counts."""
    from personaforge.dataset.stats import speaker_table
    from personaforge.personas import Roster, load_cards
    from personaforge.transcripts import discover, parse_file

    _check_format(fmt)
    roster = Roster(load_cards(personas)) if personas else None
    known = roster.known_labels if roster else None
    parsed = [parse_file(path, fmt, known) for path in discover(transcripts)]
    # Per file, the format it was read as: a wrong guess shows up here before it shows up in the speakers.
    for transcript in parsed:
        how = "--format" if transcript.forced else "detected"
        count = len(transcript.turns)
        line = f"{transcript.source}: {transcript.format} ({how}), {count} turn{'' if count == 1 else 's'}"
        if transcript.alternatives:
            line += (f"; ambiguous: also fits {' or '.join(transcript.alternatives)}, pass --format"
                     f" {transcript.alternatives[0]} if the speakers below look wrong")
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    rows = speaker_table(parsed, roster)
    table = Table(title=f"{len(rows)} speaker labels in {len(parsed)} file(s)")
    for column, justify in (("label", "left"), ("turns", "right"), ("words", "right"), ("card", "left"), ("files", "left")):
        table.add_column(column, justify=justify)
    for row in rows:
        card = f"{row['card']} ({row['role']})" if row["card"] else ("-" if roster else "")
        table.add_row(row["label"], str(row["turns"]), str(row["words"]), card, ", ".join(row["files"]))
    console.print(table)
