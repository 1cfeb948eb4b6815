"""The `persona` command line. Parses arguments, calls stage functions, prints errors as one line."""

from __future__ import annotations

import faulthandler
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from personaforge import __version__
from personaforge.cli_arena import register as register_arena
from personaforge.cli_chat import register as register_chat
from personaforge.cli_console import make_console
from personaforge.cli_export import export_app
from personaforge.cli_models import models_app
from personaforge.cli_push import register as register_push
from personaforge.cli_studio import register as register_studio
from personaforge.config import RECORD_TYPES, TeacherConfig, load_data_config, validate_config
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path
from personaforge.transcripts import FORMAT_HELP, FORMATS

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Turn interview and documentary transcripts into LLMs that speak as the people in them.")
data_app = typer.Typer(no_args_is_help=True, help="Build, check and inspect persona datasets.")
app.add_typer(data_app, name="data")
runs_app = typer.Typer(no_args_is_help=True, help="List, inspect and remove training runs.")
app.add_typer(runs_app, name="runs")
app.add_typer(models_app, name="models")
app.add_typer(export_app, name="export")
register_chat(app)
register_push(app)
register_studio(app, data_app)
register_arena(app)

console = make_console()
err_console = make_console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"personaforge {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Print the version and exit.")] = False) -> None:
    """personaforge: transcripts → persona datasets → fine-tuned persona models."""


class RichProgress:
    """Bridges the build's progress reports to a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def task(self, description: str, total: int):
        task_id = self.progress.add_task(description, total=max(total, 1))
        return lambda: self.progress.advance(task_id)

    def warn(self, message: str) -> None:
        err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


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


RUNS_DIR_HELP = "Folder that holds the runs (output.dir)."
ALLOW_PICKLE = typer.Option("--allow-pickle", help="Also load pickle weights (.bin/.pt), which can run code when"
                            " loaded; only for sources you trust (sets model.allow_pickle=true).")


def _pickle_override(allow_pickle: bool) -> list[str]:
    return ["model.allow_pickle=true"] if allow_pickle else []


@app.command("train")
def train_command(
    config: Annotated[Optional[Path], typer.Argument(help="Training config YAML.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides, e.g. train.epochs=2 lora.r=8")] = None,
    resume: Annotated[Optional[str], typer.Option("--resume", help="Continue RUN from its last checkpoint.")] = None,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
    check: Annotated[bool, typer.Option("--check", help="Run every preflight check (config, data, model source,"
                                        " tokenization, LoRA targets, memory) and exit; creates nothing.")] = False,
) -> None:
    """Fine-tune a model with LoRA on a built dataset; prints `run: PATH` last."""
    from personaforge.config import load_train_config
    from personaforge.train import RunFailed, resume as resume_run, train

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    if check:
        from personaforge.train import check as check_config

        if resume is not None:
            raise PersonaForgeError("--check takes a CONFIG, not --resume RUN")
        if config is None:
            raise PersonaForgeError("give a training config to check, e.g. persona train --check configs/train/demo.yaml")
        cfg, notes = load_train_config(config, [*(overrides or []), *_pickle_override(allow_pickle)])
        for note in notes:
            print(f"note: {note}")
        for line in check_config(cfg):
            print(line)
        print(f"ok: {display_path(config)} passes every preflight check; nothing was created")
        return
    try:
        if resume is not None:
            if config is not None:
                raise PersonaForgeError("--resume RUN takes no CONFIG: the run keeps the config it started with")
            run = resume_run(resume, runs_dir, log=log)
        else:
            if config is None:
                raise PersonaForgeError("give a training config, e.g. persona train configs/train/smollm2_135m_instruct.yaml")
            cfg, notes = load_train_config(config, [*(overrides or []), *_pickle_override(allow_pickle)])
            for note in notes:
                log(f"note: {note}")
            run = train(cfg, config.stem, log=log)
    except RunFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        print(f"run: {display_path(failed.run.path)}")
        raise typer.Exit(1)
    if int(os.environ.get("RANK", "0")) != 0:
        return  # under torchrun/accelerate only the main process reports
    status = run.status
    if status != "finished":
        log(f"{status}: {run.message or ''}")
    print(f"run: {display_path(run.path)}")


@app.command("merge")
def merge_command(
    run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """Merge a run's LoRA adapter into the base weights (checked against the adapter model)."""
    from personaforge.merge import MergeCheckFailed, merge_run
    from personaforge.train.run import resolve_run

    try:
        result = merge_run(resolve_run(run, runs_dir), log=lambda m: err_console.print(m, markup=False),
                           allow_pickle=allow_pickle)
    except MergeCheckFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        raise typer.Exit(1)
    print(f"merged: {display_path(result.path)} (max |Δ logit| {result.max_abs_diff:.2e}, tolerance {result.tolerance})")


@runs_app.command("list")
def runs_list(runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs")) -> None:
    """Every run with its status (stale = killed while running), model, date and final loss."""
    from personaforge.train.run import list_runs

    runs = list_runs(runs_dir)
    if not runs:
        print(f"no runs in {display_path(runs_dir)}")
        return
    table = Table(title=f"runs in {display_path(runs_dir)}")
    for column in ("run", "status", "model", "started", "loss", "eval loss"):
        table.add_column(column)
    for item in runs:
        metrics = item.read_json("train_metrics.json")
        started = item.read_json("status.json").get("started", "")
        model = (item.config.get("model") or {}).get("name", "?")
        loss = metrics.get("final_loss")
        eval_loss = metrics.get("eval_loss")
        table.add_row(item.name, item.status, model, started.replace("T", " "),
                      f"{loss:.4f}" if isinstance(loss, float) else "", f"{eval_loss:.4f}" if isinstance(eval_loss, float) else "")
    console.print(table)


@runs_app.command("show")
def runs_show(run: Annotated[str, typer.Argument(help="Run folder, run name, or 'latest'.")],
              runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs")) -> None:
    """Status, config and metrics of one run."""
    import json

    from personaforge.train.run import resolve_run

    item = resolve_run(run, runs_dir)
    print(f"run: {display_path(item.path)}")
    print(f"status: {item.status}" + (f" ({item.message})" if item.message else ""))
    metrics = item.read_json("train_metrics.json")
    metrics.pop("loss_history", None)
    for name in ("env.json", "data.json"):
        data = item.read_json(name)
        if data:
            print(f"{name}: {json.dumps(data, ensure_ascii=False)}")
    if metrics:
        print(f"train_metrics.json: {json.dumps(metrics)}")
    checkpoint = item.last_checkpoint()
    print(f"last checkpoint: {checkpoint.name if checkpoint else 'none'}")


@runs_app.command("rm")
def runs_rm(run: Annotated[str, typer.Argument(help="Run folder or run name.")],
            runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs")) -> None:
    """Delete a run folder (not while it is running)."""
    from personaforge.train.run import remove_run, resolve_run

    item = resolve_run(run, runs_dir)
    remove_run(item)
    print(f"removed: {display_path(item.path)}")


@app.command("eval")
def eval_command(
    run: Annotated[Optional[str], typer.Argument(help="Run folder, run name, or 'latest' (or an eval config of the"
                                                 " original pipeline: a .yaml file).")] = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Evaluate the untuned base model with the same prompts.")] = False,
    split: Annotated[str, typer.Option(help="Which split to evaluate: eval or train.")] = "eval",
    max_samples: Annotated[Optional[int], typer.Option(help="A seeded subset stratified by persona.")] = None,
    overrides: Annotated[Optional[list[str]], typer.Argument(
        help="eval.* settings for this evaluation, e.g. eval.repetition_penalty=1.2 eval.max_new_tokens=96")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="An eval config of the original pipeline"
                      " (model_path, dataset_path, metrics_dir, use_gguf, ...): evaluates what it names.")] = None,
    runs_dir: Annotated[Path, typer.Option(help=RUNS_DIR_HELP)] = Path("outputs/runs"),
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """Generate answers for the eval split and score them (metrics.json, predictions.jsonl, report.md)."""
    from personaforge.evaluate.runner import evaluate_run
    from personaforge.train.run import resolve_run

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    if max_samples is not None and max_samples < 1:
        raise PersonaForgeError("--max-samples must be at least 1")
    overrides = list(overrides or [])
    if config is None and run is not None and run.lower().endswith((".yaml", ".yml")) and Path(run).is_file():
        config, run = Path(run), None  # persona eval EVAL.yaml: the original's eval config, detected by its keys
    if config is not None:
        if run is not None:
            if "=" not in run:
                raise PersonaForgeError(f"give a run or --config, not both ('{run}' and --config {config})")
            overrides.insert(0, run)  # typer hands the first override to RUN
        if baseline or split != "eval":
            raise PersonaForgeError("--baseline and --split apply to runs; an eval config names its model and data")
        result = _eval_config(config, overrides, max_samples, allow_pickle, log)
    else:
        if run is None:
            raise PersonaForgeError("give a run (a folder, a name under outputs/runs, or latest), or --config EVAL.yaml")
        result = evaluate_run(resolve_run(run, runs_dir), baseline=baseline, split=split, max_samples=max_samples,
                              overrides=overrides, allow_pickle=allow_pickle, log=log)
    m = result.metrics
    lo, hi = m["ci"]["rouge1"]
    print(f"rouge1 {m['rouge1']:.3f} [{lo:.3f}, {hi:.3f}]  semantic {m['semantic_similarity']:.3f}  bleu {m['bleu']:.3f}"
          f"  attribution {m['attribution']['accuracy']:.2f}  blending {m['attribution']['blending_index'] or float('nan'):.3f}")
    print(f"eval: {display_path(result.folder)}")


def _eval_config(config: Path, overrides: list[str], max_samples: Optional[int], allow_pickle: bool, log):
    """persona eval --config: the original's eval config; llama.cpp failures after the start exit 1, one line."""
    from personaforge.evaluate.eval_config import evaluate_config
    from personaforge.llama_worker import LlamaFailed
    from personaforge.native import NativeCrash

    if not config.is_file():
        raise PersonaForgeError(f"--config {config}: file not found")
    try:
        return evaluate_config(config, overrides, max_samples=max_samples, allow_pickle=allow_pickle, log=log)
    except (NativeCrash, LlamaFailed) as failed:
        sys.stdout.flush()
        sys.stderr.write(f"error: {failed}\n")
        raise typer.Exit(1)


@app.command("leaderboard")
def leaderboard_command(
    runs: Annotated[Path, typer.Option("--runs", help="Folder searched recursively for evaluated runs.")] = Path("outputs/runs"),
    metric: Annotated[str, typer.Option(help="Metric to rank by.")] = "rouge1",
    fmt: Annotated[str, typer.Option("--format", help="md, csv, json or html (printed to stdout).")] = "md",
    out: Annotated[Optional[Path], typer.Option(help="Also write every format, plots and report.html here.")] = None,
) -> None:
    """Rank evaluated runs, compare base vs instruct, and say whether the winner is significantly better."""
    from personaforge.leaderboard import build_leaderboard, collect

    renderers = {"md": "to_markdown", "csv": "to_csv", "json": "to_json", "html": "to_html"}
    if fmt.lower() not in renderers:
        raise PersonaForgeError(f"--format {fmt}: use one of {', '.join(renderers)}")
    board = build_leaderboard(collect(runs), metric=metric, runs_dir=runs)
    if out is not None:
        board.write_all(out)
    print(getattr(board, renderers[fmt.lower()])())
    if out is not None:
        err_console.print(f"report: {display_path(out / 'report.html')}", markup=False)


def _print_leaderboard(runs_dir: Path, out: Path) -> None:
    from personaforge.leaderboard import build_leaderboard, collect

    board = build_leaderboard(collect(runs_dir), runs_dir=runs_dir)
    board.write_all(out)
    print(board.to_markdown())
    print(f"report: {display_path(out / 'report.html')}")


@app.command("run")
def run_command(
    config: Annotated[Path, typer.Argument(help="Training config YAML.")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value overrides")] = None,
    data_config: Annotated[Optional[Path], typer.Option(help="Data config used when data.path is missing"
                                                        " (default: configs/data/default.yaml).")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate the untuned base model.")] = True,
    max_samples: Annotated[Optional[int], typer.Option(help="Evaluate a seeded stratified subset.")] = None,
    leaderboard_out: Annotated[Optional[Path], typer.Option(help="Where the leaderboard report goes"
                                                            " (default: next to output.dir, in leaderboard/).")] = None,
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """The whole pipeline: build the data if missing → train → merge → eval (+ baseline) → leaderboard."""
    from personaforge.pipeline import run_pipeline
    from personaforge.train import RunFailed

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    try:
        result = run_pipeline(config, [*(overrides or []), *_pickle_override(allow_pickle)],
                              data_config=data_config, baseline=baseline,
                              max_samples=max_samples, log=log)
    except RunFailed as failed:
        sys.stderr.write(f"error: {failed}\n")
        print(f"run: {display_path(failed.run.path)}")
        raise typer.Exit(1)
    if result.status != "finished":
        sys.stderr.write(f"error: run {result.run.name} is {result.status}: {result.message}\n")
        print(f"run: {display_path(result.run.path)}")
        raise typer.Exit(1)
    runs_dir = result.run.path.parent
    _print_leaderboard(runs_dir, leaderboard_out or runs_dir.parent / "leaderboard")
    print(f"run: {display_path(result.run.path)}")


@app.command("sweep")
def sweep_command(
    configs: Annotated[list[Path], typer.Argument(help="Training configs, e.g. configs/train/*.yaml")],
    data_config: Annotated[Optional[Path], typer.Option(help="Data config used when data.path is missing.")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also evaluate each untuned base model.")] = True,
    max_samples: Annotated[Optional[int], typer.Option(help="Evaluate a seeded stratified subset.")] = None,
    leaderboard_out: Annotated[Optional[Path], typer.Option(help="Where the leaderboard report goes.")] = None,
    allow_pickle: Annotated[bool, ALLOW_PICKLE] = False,
) -> None:
    """Run the pipeline for each config, skipping finished runs and continuing past failures."""
    from personaforge.merge import MergeCheckFailed
    from personaforge.pipeline import PipelineResult, run_pipeline
    from personaforge.train import RunFailed

    def log(message: str) -> None:
        err_console.print(message, markup=False, highlight=False, soft_wrap=True)

    missing = [str(c) for c in configs if not c.is_file()]
    if missing:
        raise PersonaForgeError(f"config not found: {', '.join(missing)}")
    results: list[PipelineResult] = []
    for config in configs:
        log(f"== {display_path(config)}")
        try:
            results.append(run_pipeline(config, _pickle_override(allow_pickle), data_config=data_config,
                                        baseline=baseline, max_samples=max_samples,
                                        reuse_finished=True, log=log))
        except (RunFailed, PersonaForgeError, MergeCheckFailed) as failed:
            log(f"error: {display_path(config)}: {failed}")
            results.append(PipelineResult(config, getattr(failed, "run", None), "failed", str(failed)))
    table = Table(title="sweep")
    for column in ("config", "status", "run", "note"):
        table.add_column(column)
    for item in results:
        note = "skipped: already finished and evaluated" if item.skipped else item.message
        table.add_row(display_path(item.config), item.status, item.run.name if item.run else "-", note[:120])
    console.print(table)
    done = [r for r in results if r.run is not None and r.status == "finished"]
    if done:
        runs_dir = done[0].run.path.parent
        _print_leaderboard(runs_dir, leaderboard_out or runs_dir.parent / "leaderboard")
    failed = [r for r in results if r.status != "finished"]
    if failed:
        sys.stderr.write(f"error: {len(failed)} of {len(results)} config(s) did not finish: "
                         f"{', '.join(display_path(r.config) for r in failed)}\n")
        raise typer.Exit(1)


# typer >= 0.2x vendors click: its usage errors derive from typer.TyperException, not click.ClickException.
_CLICK_ERRORS = (click.ClickException, *((typer.TyperException,) if hasattr(typer, "TyperException") else ()))
_EXITS = (click.exceptions.Exit, typer.Exit)
_ABORTS = (click.exceptions.Abort, typer.Abort, KeyboardInterrupt)


def _usage_error(exc: Exception) -> int:
    """A bad option or argument as one `error:` line (no usage block, no traceback); help alone when no args."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        return exc.exit_code
    ctx = getattr(exc, "ctx", None)
    hint = f"; see {ctx.command_path} --help" if ctx is not None else ""
    sys.stderr.write(f"error: {' '.join(exc.format_message().split()).rstrip('.')}{hint}\n")
    return getattr(exc, "exit_code", 2)


def main() -> None:
    # Native code runs in this process too (torch's kernels, chosen by CPU features): if it crashes, the stack
    # of the Python call that reached it is printed instead of a bare "Segmentation fault".
    try:
        faulthandler.enable()
    except (ValueError, OSError, AttributeError):  # stderr is no real file (called in-process, output captured)
        pass
    try:
        code = app(standalone_mode=False)
    except PersonaForgeError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except _EXITS as exc:
        sys.exit(exc.exit_code)
    except _CLICK_ERRORS as exc:
        sys.stdout.flush()
        sys.exit(_usage_error(exc))
    except _ABORTS:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
