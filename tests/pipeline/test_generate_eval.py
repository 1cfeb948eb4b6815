"""Generation, evaluation, the one-command pipeline and the sweep, on the tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from personaforge.evaluate.runner import stratified_subset
from personaforge.generate import GenerationSettings, cut_at_stop, generate, length_buckets
from tests.conftest import assert_user_error, run_persona
from tests.train.conftest import write_config


def _run_path(stdout: str) -> Path:
    return Path([l for l in stdout.splitlines() if l.startswith("run: ")][-1].removeprefix("run: "))


def test_batched_greedy_equals_one_at_a_time_in_float64(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64)
    prompts = ["You are Ada.\n\nHuman: What happened?\n\nAda:", "Bread", "The lamp turns every ten seconds and I",
               "Human: Storms?\n\nAda:", "Ships used to signal back with three short flashes. My father"]
    settings = GenerationSettings(max_new_tokens=12, batch_size=8)
    batched = generate(model, tokenizer, prompts, settings)
    single = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=12, batch_size=1))
    assert batched == single
    assert any(batched)


def test_length_buckets_cover_every_prompt_once_and_cap_the_padding():
    # the bench's eval prompts: 19 short ones and 13 long ones; one batch of 32 would pad to 197 tokens
    lengths = [62, 62, 63, 63, 63, 63, 63, 64, 64, 64, 65, 65, 67, 67, 69, 69, 70, 70, 73,
               122, 137, 140, 146, 155, 156, 162, 167, 174, 175, 186, 187, 197]
    batches = length_buckets(lengths, 32)
    assert [len(b) for b in batches] == [19, 10, 3]
    assert sum(len(b) * max(lengths[i] for i in b) for b in batches) == 19 * 73 + 10 * 175 + 3 * 197
    rng = random.Random(0)
    for _ in range(300):
        lengths = [rng.randint(1, 300) for _ in range(rng.randint(1, 40))]
        size = rng.randint(1, 16)
        batches = length_buckets(lengths, size)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(len(lengths)))
        assert [lengths[i] for i in flat] == sorted(lengths)  # shortest first, so batches pad little
        for b in batches:
            assert len(b) <= size and max(lengths[i] for i in b) <= 1.5 * lengths[b[0]]


def test_stop_strings_cut_the_answer():
    assert cut_at_stop(" I keep bees.\n\nHuman: and you?", ["\n\nHuman:", "\n\nAda:"]) == "I keep bees."
    assert cut_at_stop("no stop here ", ["\n\nHuman:"]) == "no stop here"


def test_seeded_sampling_is_reproducible(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    settings = GenerationSettings(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=3)
    first = generate(model, tokenizer, ["Bread", "The lamp"], settings)
    assert first == generate(model, tokenizer, ["Bread", "The lamp"], settings)
    other = generate(model, tokenizer, ["Bread", "The lamp"], GenerationSettings(max_new_tokens=10, temperature=1.0,
                                                                                   seed=4))
    assert other != first


def _distinct_token_share(tokenizer, texts: list[str]) -> float:
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return sum(len(set(i)) for i in ids) / max(1, sum(len(i) for i in ids))


def test_repetition_penalty_reaches_generate_and_curbs_loops(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64)
    prompts = ["Bread", "The lamp turns every ten seconds and I", "Storms"]
    plain = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=24))
    same = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=24, repetition_penalty=1.0))
    penalised = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=24, repetition_penalty=5.0))
    assert plain == same
    assert penalised != plain
    # A random model loops on a few tokens; a strong penalty must spread them out.
    assert _distinct_token_share(tokenizer, penalised) > _distinct_token_share(tokenizer, plain)


def _reference_greedy(model, tokenizer, prompt: str, new_tokens: int, *, penalty: float = 1.0,
                      end_rule: str = "likelier_than_not") -> str:
    """Reference: greedy decoding, one token at a time. The penalty counts only tokens the answer already has;
    then, with end_rule "likelier_than_not", EOS may win only with at least half the probability."""
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    eos = tokenizer.eos_token_id
    answer: list[int] = []
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(torch.cat([ids, torch.tensor([answer], dtype=torch.long)], dim=1)).logits[0, -1]
            for token in set(answer):
                logits[token] = logits[token] / penalty if logits[token] > 0 else logits[token] * penalty
            if end_rule == "likelier_than_not" and logits.softmax(-1)[eos] < 0.5:
                logits[eos] = float("-inf")
            answer.append(int(logits.argmax()))
            if answer[-1] == eos:
                break
    return tokenizer.decode(answer, skip_special_tokens=True).strip()


def test_repetition_penalty_counts_only_the_answer_unless_told_otherwise(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64)
    prompts = ["You are Ada.\n\nHuman: What happened to the lamp?\n\nAda:", "Bread bread bread",
               "The lamp turns every ten seconds and I"]
    answer_only = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=10, repetition_penalty=3.0))
    # Batched and left-padded, the prompt's pad positions must not count either.
    assert answer_only == [_reference_greedy(model, tokenizer, p, 10, penalty=3.0) for p in prompts]
    with_prompt = generate(model, tokenizer, prompts, GenerationSettings(
        max_new_tokens=10, repetition_penalty=3.0, repetition_penalty_scope="prompt_and_answer"))
    assert with_prompt != answer_only


def test_end_rule_blocks_the_end_tokens_only_where_ending_is_under_half_likely():
    from personaforge.generate import decoding_kwargs

    settings = GenerationSettings(end_rule="likelier_than_not")
    (rule,) = decoding_kwargs(settings, 4, [0, 1])["logits_processor"]
    probs = torch.tensor([[0.30, 0.00, 0.25, 0.25, 0.20],   # an end token is the argmax, ending is 0.30: go on
                          [0.30, 0.25, 0.15, 0.15, 0.15],   # the two end tokens hold 0.55 together: may end
                          [0.05, 0.05, 0.60, 0.20, 0.10]], dtype=torch.float64)  # going on either way
    scores = probs.clamp_min(1e-12).log()
    ruled = rule(torch.zeros((3, 2), dtype=torch.long), scores.clone())
    for row in (0, 2):
        assert torch.isinf(ruled[row, :2]).all() and torch.equal(ruled[row, 2:], scores[row, 2:])
    assert torch.equal(ruled[1], scores[1])
    assert [int(r.argmax()) for r in ruled] == [2, 0, 2]
    # Plain greedy, sampling (which draws the end with its own probability) and no end tokens: no rule.
    for off in (GenerationSettings(end_rule="argmax"), GenerationSettings(temperature=0.7)):
        assert decoding_kwargs(off, 4, [0, 1]) == {}
    assert decoding_kwargs(settings, 4, []) == {}


def test_greedy_ends_where_ending_is_likelier_than_going_on_unless_told_otherwise(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64)
    prompts = ["You are Ada.\n\nHuman: What happened to the lamp?\n\nAda:", "Bread",
               "The lamp turns every ten seconds and I"]
    eos = tokenizer.eos_token_id
    with torch.no_grad():  # an end-token bias that makes EOS the argmax of every first step, yet unlikely
        first = [model(**tokenizer(p, return_tensors="pt")).logits[0, -1] for p in prompts]
    shift = max(float(torch.cat([l[:eos], l[eos + 1:]]).max() - l[eos]) for l in first) + 0.5
    head = model.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True, dtype=torch.float64)
    biased.weight = head.weight
    with torch.no_grad():
        biased.bias.zero_()
        biased.bias[eos] = shift
    model.set_output_embeddings(biased)
    with torch.no_grad():
        first = [model(**tokenizer(p, return_tensors="pt")).logits[0, -1] for p in prompts]
    assert all(int(l.argmax()) == eos and l.softmax(-1)[eos] < 0.5 for l in first)

    plain = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=10, end_rule="argmax"))
    assert plain == ["", "", ""]  # plain greedy ends at once
    ruled = generate(model, tokenizer, prompts, GenerationSettings(max_new_tokens=10))
    assert all(ruled)
    assert ruled == [_reference_greedy(model, tokenizer, p, 10) for p in prompts]


def test_eval_overrides_change_eval_settings_only(tiny_model, tiny_dataset):
    from personaforge.config import TrainConfig, override_eval_settings
    from personaforge.errors import PersonaForgeError

    cfg = TrainConfig.model_validate({"model": {"name": str(tiny_model)}, "data": {"path": str(tiny_dataset)}})
    changed = override_eval_settings(cfg, ["eval.repetition_penalty=1.3", "eval.max_new_tokens=40"])
    assert (changed.eval.repetition_penalty, changed.eval.max_new_tokens) == (1.3, 40)
    assert changed.model == cfg.model and changed.train == cfg.train
    with pytest.raises(PersonaForgeError, match="eval.\\* settings only"):
        override_eval_settings(cfg, ["train.lr=0.1"])
    with pytest.raises(PersonaForgeError, match="repetition_penalty"):
        override_eval_settings(cfg, ["eval.repetition_penalty=0.5"])
    with pytest.raises(PersonaForgeError, match="repetiton_penalty"):
        override_eval_settings(cfg, ["eval.repetiton_penalty=1.2"])


def test_max_samples_is_a_seeded_stratified_subset():
    records = [{"id": i, "persona": "A" if i < 60 else "B"} for i in range(90)]
    subset = stratified_subset(records, 9, seed=0)
    assert len(subset) == 9
    assert sum(r["persona"] == "A" for r in subset) == 6 and sum(r["persona"] == "B" for r in subset) == 3
    assert subset == stratified_subset(records, 9, seed=0)
    assert subset != records[:9] and subset != stratified_subset(records, 9, seed=1)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model, tiny_dataset) -> Path:
    folder = tmp_path_factory.mktemp("evalrun")
    result = run_persona("train", str(write_config(folder, tiny_model, tiny_dataset, train={"max_steps": 3},
                                                   eval={"max_new_tokens": 8})))
    assert result.returncode == 0, result.stderr
    return _run_path(result.stdout)


def test_eval_writes_metrics_predictions_and_report(trained_run):
    result = run_persona("eval", str(trained_run))
    assert result.returncode == 0, result.stderr
    folder = trained_run / "eval" / "eval"
    metrics = json.loads((folder / "metrics.json").read_text())
    keys = list(metrics)
    assert keys[:7] == ["exact_match", "avg_jaccard_overlap", "rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"]
    assert all(isinstance(metrics[k], float) for k in keys[:7])
    lo, hi = metrics["ci"]["rouge1"]
    assert lo <= metrics["rouge1"] <= hi
    assert {"accuracy", "macro_f1", "confusion", "reference_accuracy", "blending_index"} <= set(metrics["attribution"])
    assert "rouge1" in metrics["definitions"] and metrics["meta"]["baseline"] is False
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["meta"]["samples"] and {"prompt", "expected", "prediction", "scores"} <= set(rows[0])
    # Per-sample attribution (0/1) averages to the reported accuracy: the leaderboard can rank and test it.
    right = [row["scores"]["attribution"] for row in rows]
    assert set(right) <= {0.0, 1.0} and sum(right) / len(right) == pytest.approx(metrics["attribution"]["accuracy"])
    assert "attribution" in metrics["ci"] and "attribution" in metrics["definitions"]
    level = metrics["real_answer_level"]["rouge1"]
    assert 0 < level["value"] < 1 and level["ci"][0] <= level["value"] <= level["ci"][1]
    assert level["samples"] == metrics["meta"]["samples"]  # every tiny persona has real training answers
    found = metrics["retrieval_level"]["semantic_similarity"]
    assert -1 <= found["ci"][0] <= found["value"] <= found["ci"][1] <= 1
    assert found["samples"] == metrics["meta"]["samples"]
    report = (folder / "report.md").read_text()
    assert "## Persona attribution" in report and "real_answer_level" in report and "retrieval_level" in report
    baseline = run_persona("eval", str(trained_run), "--baseline", "--max-samples", "1")
    assert baseline.returncode == 0, baseline.stderr
    assert json.loads((trained_run / "eval" / "eval-baseline" / "metrics.json").read_text())["meta"]["samples"] == 1


def test_cross_attribution_scores_each_question_by_its_probes(trained_run, tiny_dataset):
    from personaforge.evaluate.attribution import PersonaClassifier

    result = run_persona("eval", str(trained_run))
    assert result.returncode == 0, result.stderr
    folder = trained_run / "eval" / "eval"
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    probes = json.loads((folder / "probes.json").read_text())
    train = [json.loads(line) for line in (tiny_dataset / "train.jsonl").read_text().splitlines()]
    classifier = PersonaClassifier(seed=0).fit([r["messages"][-1]["content"] for r in train],
                                               [r["persona"] for r in train])
    # Recomputed from probes.json: the share of the other personas' answers labelled with the persona that gave them.
    for index, row in enumerate(rows):
        others = {p: a for p, a in probes[str(index)].items() if p != row["persona"]}
        named = classifier.predict(list(others.values()))
        expected = sum(n == p for n, p in zip(named, others)) / len(others)
        assert row["scores"]["cross_attribution"] == pytest.approx(expected)
    shares = [row["scores"]["cross_attribution"] for row in rows]
    assert metrics["cross_attribution"] == pytest.approx(sum(shares) / len(shares))
    lo, hi = metrics["ci"]["cross_attribution"]
    assert lo <= metrics["cross_attribution"] <= hi and "cross_attribution" in metrics["definitions"]


def test_empty_answers_are_recorded_not_a_crash(trained_run, monkeypatch):
    from personaforge.evaluate import runner
    from personaforge.train.run import Run

    monkeypatch.setattr(runner, "generate", lambda model, tokenizer, prompts, *a, **k: [""] * len(prompts))
    result = runner.evaluate_run(Run(trained_run), log=lambda m: None)
    assert result.metrics["rouge1"] == 0.0
    rows = [json.loads(line) for line in (result.folder / "predictions.jsonl").read_text().splitlines()]
    assert all(row["prediction"] == "" for row in rows)


def test_eval_refuses_bad_runs(tmp_path, trained_run, tiny_model, tiny_dataset):
    assert_user_error(run_persona("eval", str(tmp_path / "nothing")), "not found")
    broken = write_config(tmp_path, tiny_model, tiny_dataset, train={"lr": 1e4, "max_grad_norm": 1e9,
                                                                      "grad_spike_factor": 2.0})
    failed = _run_path(run_persona("train", str(broken)).stdout)
    assert_user_error(run_persona("eval", str(failed)), "failed")
    # an eval file naming a persona the run never saw
    other = tmp_path / "other-data"
    other.mkdir()
    rows = [json.loads(line) for line in (tiny_dataset / "eval.jsonl").read_text().splitlines()]
    for row in rows:
        row["persona"] = "Zed Unknown"
    (other / "train.jsonl").write_text((tiny_dataset / "train.jsonl").read_text())
    (other / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = trained_run / "config.yaml"
    original = config.read_text()
    config.write_text(original.replace(str(tiny_dataset), str(other)))
    try:
        assert_user_error(run_persona("eval", str(trained_run)), "Zed Unknown")
    finally:
        config.write_text(original)
    assert_user_error(run_persona("leaderboard", "--runs", str(tmp_path / "empty")), "empty", "not found")
    (tmp_path / "empty").mkdir()
    assert_user_error(run_persona("leaderboard", "--runs", str(tmp_path / "empty")), "no evaluated runs")


def test_run_then_sweep_skips_finished_and_continues_past_failures(tmp_path, tiny_model, tiny_dataset):
    good = write_config(tmp_path / "good", tiny_model, tiny_dataset, train={"max_steps": 2},
                        eval={"max_new_tokens": 6}, output={"dir": str(tmp_path / "runs")})
    # A metric the board could not rank is refused before anything trains.
    assert_user_error(run_persona("run", str(good), "--metric", "rogue1"), "--metric rogue1", "rouge1")
    assert not (tmp_path / "runs").exists()
    result = run_persona("run", str(good), "--max-samples", "2", "--metric", "semantic_similarity")
    assert result.returncode == 0, result.stderr
    assert "(eval-baseline)" in result.stdout and "# Leaderboard: semantic_similarity" in result.stdout
    assert "## Fine-tuned vs untuned baseline, every key metric" in result.stdout
    assert (tmp_path / "leaderboard" / "report.html").exists()
    bad = write_config(tmp_path / "bad", tiny_model, tiny_dataset, output={"dir": str(tmp_path / "runs")},
                       train={"lr": 1e4, "max_grad_norm": 1e9, "grad_spike_factor": 2.0})
    sweep = run_persona("sweep", str(good), str(bad), "--max-samples", "2")
    assert sweep.returncode == 1
    assert "skipped: already finished and evaluated" in sweep.stdout
    assert "failed" in sweep.stdout and "did not finish" in sweep.stderr
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 2  # the good config was not trained twice


def test_sweep_reuses_a_run_saved_before_new_keys_and_reevaluates_when_eval_settings_change(tmp_path, tiny_model,
                                                                                             tiny_dataset):
    import yaml

    from personaforge.config import load_train_config
    from personaforge.pipeline import finished_run_for, run_pipeline

    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"max_steps": 1},
                          eval={"max_new_tokens": 6}, output={"dir": str(tmp_path / "runs")})
    first = run_pipeline(config, baseline=False, merge=False, max_samples=2, log=lambda line: None)
    assert first.status == "finished"
    # As an older personaforge saved it: keys added since then are missing, their defaults unchanged.
    saved = yaml.safe_load((first.run.path / "config.yaml").read_text())
    del saved["eval"]["repetition_penalty"], saved["model"]["allow_pickle"]
    (first.run.path / "config.yaml").write_text(yaml.safe_dump(saved))
    cfg, _ = load_train_config(config, [])
    assert finished_run_for(cfg).path == first.run.path
    retrained, _ = load_train_config(config, ["train.lr=0.002"])
    assert finished_run_for(retrained) is None  # a training key that differs is another recipe

    same = run_pipeline(config, baseline=False, merge=False, max_samples=2, reuse_finished=True, log=lambda line: None)
    assert same.skipped and same.run.path == first.run.path
    changed = run_pipeline(config, ["eval.max_new_tokens=3"], baseline=False, merge=False, max_samples=2,
                           reuse_finished=True, log=lambda line: None)
    assert not changed.skipped and changed.run.path == first.run.path  # reused, not retrained...
    metrics = json.loads((first.run.path / "eval" / "eval" / "metrics.json").read_text())
    assert metrics["meta"]["generation"]["max_new_tokens"] == 3  # ...and evaluated as the config now says
    assert metrics["meta"]["generation"]["end_rule"] == "likelier_than_not"  # recorded: the sweep compares it
    assert len([p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.is_symlink()]) == 1


class SavedRun:
    """A run as _evaluated_as reads it: only its eval results' recorded generation settings."""

    def __init__(self, generation: dict) -> None:
        self.generation = generation

    def read_json(self, name: str) -> dict:
        return {"meta": {"generation": self.generation}}


def test_eval_results_saved_before_the_penalty_scope_existed_counted_the_prompt(tiny_model, tiny_dataset):
    from personaforge.config import TrainConfig
    from personaforge.pipeline import _evaluated_as

    cfg = TrainConfig.model_validate({"model": {"name": str(tiny_model)}, "data": {"path": str(tiny_dataset)},
                                      "eval": {"repetition_penalty": 1.2}})
    settings = {key: value for key, value in cfg.eval.model_dump().items() if key != "max_samples"}
    old = {key: value for key, value in settings.items() if key != "repetition_penalty_scope"}
    assert _evaluated_as(SavedRun(settings), cfg)
    assert not _evaluated_as(SavedRun(old), cfg)  # penalised the prompt too: evaluate again
    assert _evaluated_as(SavedRun(old), cfg.model_copy(update={"eval": cfg.eval.model_copy(
        update={"repetition_penalty_scope": "prompt_and_answer"})}))
    unpenalised = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"repetition_penalty": 1.0})})
    assert _evaluated_as(SavedRun({**old, "repetition_penalty": 1.0}), unpenalised)  # no penalty: scope moot


def test_eval_results_saved_before_the_end_rule_existed_ended_at_the_argmax(tiny_model, tiny_dataset):
    from personaforge.config import TrainConfig
    from personaforge.pipeline import _evaluated_as

    cfg = TrainConfig.model_validate({"model": {"name": str(tiny_model)}, "data": {"path": str(tiny_dataset)}})
    settings = {key: value for key, value in cfg.eval.model_dump().items() if key != "max_samples"}
    old = {key: value for key, value in settings.items() if key != "end_rule"}
    assert settings["end_rule"] == "likelier_than_not" and _evaluated_as(SavedRun(settings), cfg)
    assert not _evaluated_as(SavedRun(old), cfg)  # plain greedy: evaluate again
    assert not _evaluated_as(SavedRun({**settings, "seed": 1}), cfg)  # it also picks the subset and resamples
    assert _evaluated_as(SavedRun(old), cfg.model_copy(update={"eval": cfg.eval.model_copy(
        update={"end_rule": "argmax"})}))
    sampled = cfg.model_copy(update={"eval": cfg.eval.model_copy(update={"temperature": 0.7})})
    assert _evaluated_as(SavedRun({**old, "temperature": 0.7}), sampled)  # sampling: no end rule applies
