"""`persona eval RUN`: generate answers for the eval split and score them.

    records = eval_records(run, split, max_samples)      # the run's dataset, stratified subset
    model = load_for_eval(run, baseline)                 # adapter, merged/, or the untuned base
    predictions = generate(model, prompts)               # batched, in the run's exact prompt format
    probes = generate(same questions, every other persona)
    metrics = score + intervals + attribution + blending
    write RUN/eval/<split>[-baseline]/{metrics.json, predictions.jsonl, report.md}

`persona eval --config EVAL.yaml` (the original pipeline's eval configs, evaluate/eval_config.py) runs the same
core, `score_answers`, on a model folder, a hub id or a GGUF file.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from personaforge.config import TrainConfig, override_eval_settings
from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text, dumps_json, dumps_jsonl, replace_dir
from personaforge.generate import GenerationSettings, generate
from personaforge.prompting import Conversation, PromptFormat, record_conversation
from personaforge.train import PROMPT_FORMAT_FILE
from personaforge.train.data import load_dataset_dir
from personaforge.train.run import Run

SPLITS = ("eval", "train")


@dataclass
class EvalResult:
    folder: Path
    metrics: dict


def stratified_subset(records: list[dict], count: int, seed: int) -> list[dict]:
    """A seeded subset with each persona's share preserved (not the first N), in the original order."""
    if count <= 0 or count >= len(records):
        return records
    groups: dict[str, list[int]] = defaultdict(list)
    for index, record in enumerate(records):
        groups[str(record.get("persona"))].append(index)
    rng = random.Random(f"subset:{seed}")
    quotas = {p: max(1, round(count * len(ix) / len(records))) for p, ix in groups.items()}
    while sum(quotas.values()) > count:  # rounding up can overshoot: trim the largest quota
        biggest = max(quotas, key=lambda p: (quotas[p], p))
        quotas[biggest] -= 1
    chosen: list[int] = []
    for persona in sorted(groups):
        indices = list(groups[persona])
        rng.shuffle(indices)
        chosen.extend(indices[: quotas[persona]])
    return [records[i] for i in sorted(chosen)]


def fingerprint(records: list[dict]) -> str:
    digest = hashlib.sha256()
    for record in records:
        digest.update(json.dumps([record.get("id"), record.get("prompt"), record.get("completion"),
                                  record.get("messages")], ensure_ascii=False).encode())
    return digest.hexdigest()


def check_run(run: Run, baseline: bool) -> None:
    if not baseline:
        run.require_finished("evaluated (or use --baseline for the base model)")
    elif not (run.path / PROMPT_FORMAT_FILE).exists():
        raise PersonaForgeError(f"run {run.name} never reached training ({run.status}); the baseline needs its prompt format")


def check_same_data(run: Run, cfg: TrainConfig, dataset) -> None:
    """The dataset files must be the ones the run trained on: a rebuilt split can put eval answers into training.

    Compared by content (sha256 per file), not by path, so evaluating from another working directory still works.
    """
    recorded = run.read_json("data.json").get("files")
    if isinstance(recorded, dict) and recorded and sorted(recorded.values()) != sorted(dataset.files.values()):
        raise PersonaForgeError(f"data.path {cfg.data.path}: the dataset changed since run {run.name} trained on it"
                                " (file hashes differ from its data.json); evaluate on the data it was trained on,"
                                " or train a new run")


def unnamed_persona_problem(records: list[dict], where: Callable[[dict], str]) -> None:
    """A record whose persona nobody can tell (no persona field, no '<Name>:' turn at its prompt's end) is named."""
    for record in records:
        if not record.get("persona"):
            raise PersonaForgeError(
                f"{where(record)}: no persona: the record has no 'persona' field and its prompt does not end with"
                " the persona's turn ('...\\n\\nName:', as the original pipeline's records do); add one or the"
                " other")


def conversations_of(records: list[dict], where: Callable[[dict], str] = lambda r: f"eval record {r.get('id')}"
                     ) -> list[Conversation]:
    """Each record's turns: from its messages, or parsed from its plain prompt (the original pipeline's records)."""
    conversations = []
    for record in records:
        conversation = record_conversation(record)
        if conversation is None or conversation.answer is None:
            if "messages" in record:
                raise PersonaForgeError(f"{where(record)}: the record has no 'messages' with an answer; rebuild the"
                                        " dataset with persona data build")
            raise PersonaForgeError(f"{where(record)}: the prompt's turns do not parse (a system prompt, then"
                                    " alternating 'Human:' and '<Name>:' turns, ending with '\\n\\n<Name>:'); fix the"
                                    " record or give it 'messages'")
        conversations.append(conversation)
    return conversations


def systems_of(records: list[dict]) -> dict[str, str]:
    """Each persona's system prompt as its records carry it (the first record of each persona)."""
    systems: dict[str, str] = {}
    for record in records:
        conversation = record_conversation(record)
        if conversation is not None:
            systems.setdefault(conversation.name, conversation.system)
    return systems


def load_for_eval(run: Run, cfg: TrainConfig, baseline: bool, log):
    from personaforge import models

    model_cfg = cfg.model
    env = run.read_json("env.json")
    dtype = env.get("dtype")
    if dtype and not (env.get("precision") or {}).get("cpu_probe"):  # a CPU probe's choice is re-made on this CPU
        model_cfg = model_cfg.model_copy(update={"dtype": dtype})
    merged = run.path / "merged"
    # inference: weights in the compute dtype (bf16 where the CPU probe chose it; models.load_model says why)
    if not baseline and (merged / "config.json").exists():
        local = model_cfg.model_copy(update={"name": str(merged), "quantization": "none"})
        return models.load_model(local, log=log, inference=True)
    loaded = models.load_model(model_cfg, log=log, inference=True)
    if not baseline:
        loaded.model = models.load_adapter(loaded.model, run.adapter_dir, allow_pickle=model_cfg.allow_pickle)
    return loaded


def evaluate_run(run: Run, *, baseline: bool = False, split: str = "eval", max_samples: int | None = None,
                 overrides: Sequence[str] = (), allow_pickle: bool = False, log=print) -> EvalResult:
    if split not in SPLITS:
        raise PersonaForgeError(f"--split {split}: use one of {', '.join(SPLITS)}")
    check_run(run, baseline)
    cfg = run.train_config()
    if overrides:
        cfg = override_eval_settings(cfg, list(overrides))
    if allow_pickle:  # --allow-pickle adds to the run's own model.allow_pickle
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"allow_pickle": True})})
    fmt = PromptFormat.from_json(run.read_json(PROMPT_FORMAT_FILE))
    dataset = load_dataset_dir(cfg.data)
    records = dataset.eval if split == "eval" else dataset.train
    if not records:
        hint = ("; the run was trained without an eval set (no data.eval_path, no eval.jsonl in its dataset"
                " folder): evaluate it on eval records with an eval config (model_path: the run folder, dataset_path:"
                " a .jsonl file or folder) and persona eval --config EVAL.yaml" if split == "eval" else "")
        raise PersonaForgeError(f"{cfg.data.path} has no {split} records to evaluate{hint}")
    unnamed_persona_problem(records, dataset.where)
    trained = set(run.read_json("data.json").get("personas") or dataset.personas)
    unseen = sorted({str(r.get("persona")) for r in records} - trained)
    if unseen:
        raise PersonaForgeError(f"{split} records name persona(s) the run never trained on: {', '.join(unseen)};"
                                " evaluate with the dataset the run was trained on")
    check_same_data(run, cfg, dataset)
    limit = max_samples if max_samples is not None else cfg.eval.max_samples
    records = stratified_subset(records, limit or 0, cfg.eval.seed)
    conversations = conversations_of(records, dataset.where)
    systems = systems_of(dataset.train + dataset.eval)

    loaded = load_for_eval(run, cfg, baseline, log)
    settings = GenerationSettings.from_eval(cfg.eval, cfg.eval.batch_size)
    metrics, rows, probes = score_answers(records, conversations, systems, dataset.train, fmt,
                                          hf_answerer(loaded, fmt, settings), seed=cfg.eval.seed, log=log,
                                          label=f"{'baseline' if baseline else 'fine-tuned'}, batch {settings.batch_size}")
    metrics["meta"] = _meta(run, cfg, baseline, split, records, settings)

    name = split + ("-baseline" if baseline else "")
    folder = run.path / "eval" / name
    _write(folder, metrics, rows, probes)
    _tensorboard(run, name, metrics)
    return EvalResult(folder, metrics)


# A model's answers to rendered prompts: (prompts, stop strings) → answers, in order.
Answerer = Callable[[list[str], list[str]], list[str]]


@dataclass
class Answering:
    """How one model answers: the prompt renderer, the generator, and the stop strings its style needs."""

    render: Callable[[Conversation], str]
    generate: Answerer
    chat_stops: list[str]


def hf_answerer(loaded, fmt: PromptFormat, settings: GenerationSettings) -> Answering:
    """A transformers model (personaforge.generate: batched, KV-cached) as an Answering."""
    def answers(prompts: list[str], stops: list[str]) -> list[str]:
        return generate(loaded.model, loaded.tokenizer, prompts, settings, stop_strings=stops,
                        add_special_tokens=fmt.style == "plain")

    return Answering(render=lambda c: fmt.render(c, loaded.tokenizer)[0], generate=answers,
                     chat_stops=[s for s in [fmt.eos_token, "<|im_end|>"] if s])


def score_answers(records: list[dict], conversations: list[Conversation], systems: dict[str, str],
                  train_records: list[dict], fmt: PromptFormat, answering: Answering, *, seed: int,
                  log=print, label: str = "") -> tuple[dict, list[dict], dict]:
    """Generate the answers and the cross-persona probes, then score them: (metrics without meta, prediction
    rows, probes). ``train_records`` train the attribution classifier and give the real-answer and retrieval
    levels."""
    from personaforge.evaluate.attribution import PersonaClassifier, attribution_report, blending_index
    from personaforge.evaluate.metrics import (DEFINITIONS, MEAN_METRICS, aggregate, confidence_intervals,
                                               real_answer_level, retrieval_level, score_samples)
    from personaforge.evaluate.stats import bootstrap_ci

    personas = sorted(systems)
    stops = fmt.stop_strings(personas) if fmt.style == "plain" else answering.chat_stops
    prompts = [answering.render(Conversation(c.system, c.name, c.history, c.question)) for c in conversations]
    # Cross-persona probes: every eval question also put to every other persona.
    probe_keys, probe_prompts = [], []
    for index, c in enumerate(conversations):
        for persona in personas:
            if persona != c.name:
                probe_keys.append((index, persona))
                probe_prompts.append(answering.render(Conversation(systems[persona], persona, (), c.question)))
    log(f"generating {len(prompts)} answers and {len(probe_prompts)} cross-persona probes"
        + (f" ({label})" if label else ""))
    outputs = answering.generate(prompts + probe_prompts, stops)
    predictions, probe_answers = outputs[: len(prompts)], outputs[len(prompts):]
    references = [c.answer.strip() for c in conversations]

    per_sample = score_samples(predictions, references)
    metrics = aggregate(predictions, references, per_sample)
    metrics["ci"] = {k: list(v) for k, v in confidence_intervals(predictions, references, per_sample).items()}

    classifier = PersonaClassifier(seed=seed).fit(
        [_answer_text(r) for r in train_records], [str(r["persona"]) for r in train_records])
    truth = [c.name for c in conversations]
    attribution = attribution_report(classifier, predictions, truth, labels=personas)
    # Per sample 1 when the classifier names the asked persona, else 0: the leaderboard ranks and tests it
    # (--metric attribution) like any per-sample metric.
    for scores, named, asked in zip(per_sample, classifier.predict(predictions), truth, strict=True):
        scores["attribution"] = float(named == asked)
    metrics["ci"]["attribution"] = list(bootstrap_ci([s["attribution"] for s in per_sample]))
    attribution["reference_accuracy"] = attribution_report(classifier, references, truth, labels=personas)["accuracy"]
    probes: dict[str, dict[str, str]] = {str(i): {c.name: predictions[i]} for i, c in enumerate(conversations)}
    for (index, persona), answer in zip(probe_keys, probe_answers):
        probes[str(index)][persona] = answer
    _score_cross_attribution(metrics, per_sample, classifier, probe_keys, probe_answers)
    try:
        blend = blending_index(probes)
    except PersonaForgeError as exc:  # too few samples (e.g. --max-samples 1): no index, not a failed eval
        blend = {"blending_index": None, "note": str(exc)}
    attribution.update({"blending_index": blend["blending_index"], "blending": blend})
    metrics["attribution"] = attribution
    # Only records marked as the person's own words count (the original pipeline's records carry no type).
    real = [(str(r["persona"]), _answer_text(r)) for r in train_records if r.get("type") == "extracted"]
    metrics["real_answer_level"] = _summarised(real_answer_level(references, truth, real, seed=seed))
    metrics["retrieval_level"] = _summarised(
        retrieval_level([c.question for c in conversations], references, truth, real))
    metrics["per_persona"] = _per_persona(truth, per_sample, MEAN_METRICS)
    metrics["definitions"] = DEFINITIONS
    rows = [{"id": r.get("id"), "persona": c.name, "question": c.question, "prompt": p, "expected": ref,
             "prediction": pred, "scores": s}
            for r, c, p, ref, pred, s in zip(records, conversations, prompts, references, predictions, per_sample)]
    return metrics, rows, probes


def _summarised(level: dict[str, list[float]]) -> dict[str, dict]:
    """A scale reference's per-sample values → mean, 95% interval and sample count per metric."""
    from personaforge.evaluate.stats import bootstrap_ci

    return {key: {"value": sum(values) / len(values), "ci": list(bootstrap_ci(values)), "samples": len(values)}
            for key, values in level.items() if values}


def _score_cross_attribution(metrics: dict, per_sample: list[dict], classifier, probe_keys: list[tuple[int, str]],
                             probe_answers: list[str]) -> None:
    """Per sample, the share of its probes (the question put to each other persona) that the classifier labels
    with the persona that answered. Own-question attribution is capped by what the question gives away (an
    untuned model told who it is answers a kelp question about kelp); a probe is where a persona's voice shows."""
    from personaforge.evaluate.stats import bootstrap_ci

    if not probe_keys:  # one persona: nobody else to put the question to
        return
    hits: dict[int, list[float]] = defaultdict(list)
    for (index, persona), named in zip(probe_keys, classifier.predict(probe_answers), strict=True):
        hits[index].append(float(named == persona))
    for index, scores in enumerate(per_sample):
        scores["cross_attribution"] = sum(hits[index]) / len(hits[index])
    values = [s["cross_attribution"] for s in per_sample]
    metrics["cross_attribution"] = sum(values) / len(values)
    metrics["ci"]["cross_attribution"] = list(bootstrap_ci(values))


def _answer_text(record: dict) -> str:
    return record["messages"][-1]["content"] if "messages" in record else record["completion"]


def _per_persona(truth: list[str], per_sample: list[dict], keys) -> dict[str, dict[str, float]]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for persona, scores in zip(truth, per_sample):
        grouped[persona].append(scores)
    return {p: {k: sum(s[k] for s in rows) / len(rows) for k in keys} | {"samples": len(rows)}
            for p, rows in sorted(grouped.items())}


def _meta(run: Run, cfg: TrainConfig, baseline: bool, split: str, records: list[dict], settings) -> dict:
    from personaforge import models

    env = run.read_json("env.json")
    family = params = instruct = None
    name = cfg.model.name
    if name.startswith("pkg:"):
        try:
            embedded = models.embedded_model(name)
            family, params, instruct = embedded.family, embedded.params, embedded.instruct
        except PersonaForgeError:
            pass
    return {
        "run": run.name, "model": name, "family": family, "params": params, "instruct": instruct,
        "baseline": baseline, "split": split, "samples": len(records), "eval_fingerprint": fingerprint(records),
        "tag": cfg.output.name, "prompt_style": run.read_json(PROMPT_FORMAT_FILE).get("style"),
        "generation": asdict(settings),
        "device": env.get("device"), "dtype": env.get("dtype"),
    }


def _write(folder: Path, metrics: dict, rows: list[dict], probes: dict) -> None:
    from personaforge.evaluate.report import render_report

    staging = folder.parent / f".{folder.name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    atomic_write_text(staging / "metrics.json", dumps_json(metrics))
    atomic_write_text(staging / "predictions.jsonl", dumps_jsonl(rows))
    atomic_write_text(staging / "probes.json", dumps_json(probes))
    atomic_write_text(staging / "report.md", render_report(metrics, rows))
    replace_dir(staging, folder)


def _tensorboard(run: Run, name: str, metrics: dict) -> None:
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(run.logs_dir / f"eval-{name}")) as writer:
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                writer.add_scalar(f"eval/{key}", value, 0)
        writer.add_scalar("eval/attribution_accuracy", metrics["attribution"]["accuracy"], 0)
