"""The original pipeline's files load as they are: its train configs (every key), its data folder (batches + eval/),
its prompt/completion-only records (persona = the turn the prompt ends with), its eval configs, and the leakage check
across its split. No model is loaded here except the tiny one `persona train --check` tokenizes with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personaforge.config import load_train_config
from personaforge.errors import PersonaForgeError
from personaforge.evaluate.eval_config import is_eval_config, load_eval_config, settings_of
from personaforge.config.original import IGNORED
from personaforge.prompting import parse_plain_record, record_conversation
from personaforge.prompting import plain_completion, plain_prompt
from personaforge.train.data import load_dataset_dir
from personaforge.yamlio import load_yaml
from tests.conftest import assert_user_error, run_persona
from tests.original.conftest import EVAL_CONFIG, GGUF_EVAL_CONFIG, LEAK, PERSONAS, QLORA_CONFIG, TRAIN_CONFIG

MACHINERY = ["tokenized_path", "use_tokenized", "data_format", "data_source", "logging_strategy",
             "evaluation_strategy", "dataloader_num_workers", "dataloader_prefetch_factor", "cuda_visible_devices"]


def _error(call) -> str:
    with pytest.raises(PersonaForgeError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------ train configs
def test_the_fixture_configs_use_every_key_the_issue_lists(original):
    for name in (TRAIN_CONFIG, QLORA_CONFIG):
        keys = set(load_yaml(Path(name)).data)
        assert set(MACHINERY) <= keys, set(MACHINERY) - keys
        assert {"dataset_path", "dataset_pattern", "model_name"} <= keys


def test_the_original_train_config_loads_with_one_note_per_machinery_key(original):
    config, notes = load_train_config(Path(TRAIN_CONFIG))
    assert (config.model.name, config.model.dtype, config.output.dir) == (
        "meta-llama/Llama-3.1-8B-Instruct", "float16", "./outputs/llama31_8b_instruct")
    assert (config.data.path, config.data.pattern, config.data.eval_path) == ("data", "*.jsonl", "data/eval")
    assert (config.data.max_length, config.data.prompt_style) == (512, "plain")
    assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (64, 128, 0.05)
    assert (config.train.epochs, config.train.batch_size, config.train.grad_accum, config.train.lr) == (6, 4, 2, 2e-4)
    assert (config.train.logging_steps, config.train.eval_every, config.train.save_every, config.train.seed) == (
        10, 50, 100, 42)
    for key in MACHINERY:
        mine = [note for note in notes if note.startswith(f"{key} ")]
        assert len(mine) == 1, (key, notes)
        # each says what personaforge does instead (devices: CUDA reads the variable before any config is read)
        assert "ignored" in mine[0] and ("personaforge" in mine[0] or "environment" in mine[0]), mine[0]
    assert any(note.startswith("dataset_path + dataset_pattern '*.jsonl' → data.path: data, data.pattern: '*.jsonl'")
               and "3 files read in this order, batch_1.jsonl, batch_2.jsonl, batch_3.jsonl" in note for note in notes)
    assert "data/eval → data.eval_path (the eval set, where the original's eval configs point; persona eval scores it)" \
        in notes
    # mapped keys are still printed as before
    assert "num_train_epochs → train.epochs" in notes and "lora_r → lora.r" in notes


def test_the_qlora_config_maps_too(original):
    config, notes = load_train_config(Path(QLORA_CONFIG))
    assert (config.model.quantization, config.model.dtype, config.model.gradient_checkpointing) == ("4bit", "bfloat16",
                                                                                                   True)
    assert config.data.pattern == "batch_*.jsonl"
    assert any(n.startswith("evaluation_strategy is ignored") and "data.validation_fraction=0" in n for n in notes)
    assert any("CUDA_VISIBLE_DEVICES=0,1" in n for n in notes)


def test_every_machinery_key_is_accepted_alone(tmp_path):
    values = {"tokenized_path": "t", "use_tokenized": "true", "data_format": "prompt_completion",
              "data_source": "{type: local}", "logging_strategy": "steps", "evaluation_strategy": "epoch",
              "dataloader_num_workers": "4", "dataloader_prefetch_factor": "2", "cuda_visible_devices": "'0'"}
    assert set(values) == set(MACHINERY)
    for key, value in values.items():
        path = tmp_path / f"{key}.yaml"
        path.write_text(f"model_name: m\ndataset_path: d\n{key}: {value}\n", encoding="utf-8")
        _, notes = load_train_config(path)
        assert sum(note.startswith(f"{key} ") for note in notes) == 1, (key, notes)
    assert set(IGNORED) >= {"tokenized_path", "use_tokenized", "data_format", "logging_strategy",
                            "dataloader_num_workers", "dataloader_prefetch_factor"}


def test_a_key_neither_pipeline_knows_is_still_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_name: m\ndataset_path: d\ntokenised_path: t\n", encoding="utf-8")
    message = _error(lambda: load_train_config(path))
    assert message.endswith(":3: unknown key 'tokenised_path' in a config for the original pipeline; did you mean"
                            " 'tokenized_path'?")


def test_a_data_source_that_is_not_local_is_refused_with_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_name: m\ndataset_path: d\ndata_source:\n  type: hub\n", encoding="utf-8")
    message = _error(lambda: load_train_config(path))
    assert ":3: data_source type 'hub'" in message and "local .jsonl files only" in message


def test_without_an_eval_folder_the_note_says_what_is_held_out(original):
    import shutil

    shutil.rmtree("data/eval")
    config, notes = load_train_config(Path(TRAIN_CONFIG))
    assert config.data.eval_path is None
    note = next(n for n in notes if n.startswith("no eval set"))
    assert "10% of the records off with seed 42" in note and "data.validation_fraction (0.05)" in note
    assert "train.seed" in note and "data.eval_path" in note


# ------------------------------------------------------------------------------------------ its data
def test_the_batches_are_the_training_set_in_order_with_file_and_line(original):
    config, _ = load_train_config(Path(TRAIN_CONFIG))
    dataset = load_dataset_dir(config.data)
    assert (len(dataset.train), len(dataset.eval)) == (24, 6)
    assert list(dataset.files) == ["data/batch_1.jsonl", "data/batch_2.jsonl", "data/batch_3.jsonl",
                                   "data/eval/eval.jsonl"]
    assert [r["id"] for r in dataset.train[:2]] == ["batch_1.jsonl:1", "batch_1.jsonl:2"]
    assert dataset.train[8]["id"] == "batch_2.jsonl:1" and dataset.eval[0]["id"] == "eval/eval.jsonl:1"
    assert dataset.where(dataset.train[9]) == "data/batch_2.jsonl:2"
    assert dataset.personas == PERSONAS
    # prompt/completion records get their persona and, parsed exactly, the same turns as messages
    first = dataset.train[0]
    assert first["persona"] == "Mira Sen" and first["messages"][-1]["content"] == first["completion"].strip()
    assert dataset.has_plain and dataset.has_messages


def test_a_bad_record_in_a_batch_names_its_file_and_line(original):
    lines = Path("data/batch_2.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"prompt": "x\n\nHuman: q\n\nMira Sen:", "completion": "  "})
    Path("data/batch_2.jsonl").write_text("\n".join(lines) + "\n")
    config, _ = load_train_config(Path(TRAIN_CONFIG))
    message = _error(lambda: load_dataset_dir(config.data))
    assert message.startswith("data/batch_2.jsonl:3: empty completion")


def test_a_pattern_that_matches_nothing_is_a_data_error(original):
    config, _ = load_train_config(Path(TRAIN_CONFIG), ["data.pattern=nothing_*.jsonl"])
    assert "data.pattern 'nothing_*.jsonl' matches no file in data" in _error(lambda: load_dataset_dir(config.data))


def test_a_plain_prompt_parses_into_its_persona_and_turns():
    record = parse_plain_record("You are Tilda.\n\nHuman: Why?\n\nTilda: Because.\n\nHuman: And now?\n\nTilda:", " Now.")
    assert record.persona == "Tilda" and record.exact
    c = record.conversation
    assert (c.system, c.question, c.answer, [(e.question, e.answer) for e in c.history]) == (
        "You are Tilda.", "And now?", "Now.", [("Why?", "Because.")])
    assert plain_prompt(c.system, c.name, c.question, c.history) + plain_completion(c.answer) == \
        "You are Tilda.\n\nHuman: Why?\n\nTilda: Because.\n\nHuman: And now?\n\nTilda: Now."
    assert parse_plain_record("Human: hi\n\nAda Bell:", "x").persona == "Ada Bell"
    assert not parse_plain_record("Human: hi\n\nAda:", "no leading space").exact  # persona kept, messages not derived
    for prompt in ("no turn at the end", "Human: q\n\nHuman:", "just a name:", "Human: q\n\n:"):
        assert parse_plain_record(prompt, " a") is None, prompt
    # a record whose persona field disagrees with its prompt's last turn: no conversation is made up
    assert record_conversation({"prompt": "Human: q\n\nAda:", "completion": " a", "persona": "Ben"}) is None


# ------------------------------------------------------------------------------------------ eval configs
def test_both_kinds_of_eval_config_load(original):
    for name in (EVAL_CONFIG, GGUF_EVAL_CONFIG):
        assert is_eval_config(load_yaml(Path(name)).data)
    config, notes = load_eval_config(Path(EVAL_CONFIG))
    settings = settings_of(config)
    assert (settings.temperature, settings.top_p, settings.max_new_tokens) == (0.7, 0.9, 150)
    assert config.max_samples == 62 and config.metrics_dir == "./outputs/metrics/llama31_8b_instruct"
    assert notes[0].startswith("do_sample: true → sampled answers (temperature 0.7, top_p 0.9")
    assert any(n.startswith("cuda_visible_devices is ignored") for n in notes)
    config, notes = load_eval_config(Path(GGUF_EVAL_CONFIG))
    assert config.use_gguf and settings_of(config).temperature == 0.0  # do_sample: false → greedy
    assert notes[0].startswith("do_sample: false → greedy answers (temperature and top_p not used)")
    assert any(n.startswith("llama_cpp_binary is ignored") for n in notes)
    assert not is_eval_config(load_yaml(Path(TRAIN_CONFIG)).data)


@pytest.mark.parametrize("text,needle", [
    ("max_sample: 3\n", ":4: unknown key 'max_sample'; did you mean 'max_samples'?"),
    ("do_sample: true\ntemperature: 0\n", "do_sample: true needs temperature > 0"),
    ("use_gguf: true\n", "use_gguf: true needs gguf_model_path"),
    ("top_p: 2\n", ":4: key 'top_p': Input should be less than or equal to 1 (got 2)"),
])
def test_eval_config_errors_name_the_line_and_key(tmp_path, text, needle):
    path = tmp_path / "eval.yaml"
    path.write_text("model_path: m\ndataset_path: d\nmetrics_dir: out\n" + text, encoding="utf-8")
    assert needle in _error(lambda: load_eval_config(path))


def test_eval_overrides_take_flat_keys_and_eval_keys(original):
    config, notes = load_eval_config(Path(EVAL_CONFIG), ["max_samples=3", "eval.repetition_penalty=1.3"])
    assert (config.max_samples, config.repetition_penalty) == (3, 1.3)
    assert not any(n.startswith("repetition_penalty:") for n in notes)  # given, so not a default to explain
    message = _error(lambda: load_eval_config(Path(EVAL_CONFIG), ["top_p=7"]))
    assert message.startswith("override 'top_p=7': key 'top_p'")


def test_eval_of_a_training_config_says_to_train_it_first(original):
    result = run_persona("eval", TRAIN_CONFIG, cwd=original)
    assert_user_error(result, "this is a training config", "persona train")


def test_train_given_an_eval_config_says_to_evaluate_with_it(original):
    assert_user_error(run_persona("train", EVAL_CONFIG, cwd=original), "an eval config of the original pipeline",
                      f"persona eval --config {EVAL_CONFIG}")


def test_eval_config_user_errors_come_before_any_output_folder(original):
    result = run_persona("eval", "--config", EVAL_CONFIG, "model_path=./nowhere", cwd=original)
    assert_user_error(result, "model './nowhere'")
    result = run_persona("eval", GGUF_EVAL_CONFIG, "dataset_path=./data/missing", cwd=original)
    assert_user_error(result, "gguf_model_path")  # the GGUF is checked first: it does not exist either
    assert not (original / "outputs").exists()


# ------------------------------------------------------------------------------------------ leakage
def test_validate_names_the_planted_cross_split_pair_and_fails(original):
    result = run_persona("data", "validate", "data", "--eval", "data/eval", cwd=original)
    assert result.returncode == 2, result.stdout + result.stderr
    eval_at, train_at, length = LEAK
    assert f"{eval_at}: leak: shares {length} words in a row with {train_at}: \"because i watched" in result.stdout
    assert ("leakage: 1 of 6 eval answer(s) share more than 8 words in a row with a training answer (1 share 8 or"
            " more; longest 17)") in result.stdout
    assert result.stdout.splitlines()[-1].startswith("24 train + 6 eval record(s): no record problems; the leakage"
                                                     " check failed")


def test_validate_can_report_leaks_without_failing(original):
    result = run_persona("data", "validate", "data", "--eval", "data/eval/eval.jsonl", "--allow-leaks", cwd=original)
    assert result.returncode == 0 and LEAK[0] in result.stdout
    assert result.stdout.splitlines()[-1] == "ok: 24 train + 6 eval record(s), no problems"
    result = run_persona("data", "validate", "data", "--eval", "data/eval", "--max-leak-ngram", "20", cwd=original)
    assert result.returncode == 0 and "leakage: 0 of 6" in result.stdout


def test_validate_finds_duplicates_across_batches_and_refuses_overlapping_splits(original):
    Path("data/batch_3.jsonl").write_text(Path("data/batch_3.jsonl").read_text()
                                          + Path("data/batch_1.jsonl").read_text().splitlines()[0] + "\n")
    result = run_persona("data", "validate", "data", cwd=original)
    assert result.returncode == 2 and "data/batch_3.jsonl:9: duplicate of data/batch_1.jsonl:1" in result.stdout
    assert_user_error(run_persona("data", "validate", "data", "--eval", "data/batch_1.jsonl", cwd=original),
                      "also part of TRAIN")
    assert_user_error(run_persona("data", "validate", "data/eval/none", cwd=original), "file not found")


# ------------------------------------------------------------------------------------------ train --check
def test_train_check_runs_every_preflight_check_and_creates_nothing(original, tiny_model):
    before = sorted(p.relative_to(original).as_posix() for p in original.rglob("*"))
    result = run_persona("train", "--check", TRAIN_CONFIG, f"model.name={tiny_model}", "model.dtype=auto",
                         cwd=original)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[-1] == f"ok: {TRAIN_CONFIG} passes every preflight check; nothing was created"
    assert "data: 24 train / 6 eval records from data/batch_1.jsonl, data/batch_2.jsonl, data/batch_3.jsonl," \
           " data/eval/eval.jsonl" in out
    assert f"personas: {', '.join(PERSONAS)}" in out
    assert any(line.startswith("samples: ") and "prompt style plain" in line for line in out)
    assert any(line.startswith("note: tokenized_path is ignored") for line in out)
    assert sorted(p.relative_to(original).as_posix() for p in original.rglob("*")) == before
    # a failing check: exit 2 with the error, and still nothing created
    result = run_persona("train", "--check", TRAIN_CONFIG, f"model.name={tiny_model}", "model.dtype=auto",
                         "lora.target_modules=[nope_proj]", cwd=original)
    assert_user_error(result, "lora.target_modules: nope_proj not in this model")
    assert sorted(p.relative_to(original).as_posix() for p in original.rglob("*")) == before
    assert_user_error(run_persona("train", "--check", cwd=original), "give a training config to check")
