"""`persona export gguf`: conversion, the prompt format inside the file, the parity check, and bad input."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from personaforge.export.gguf import model_slug, parse_quant, read_metadata
from personaforge.prompting import PromptFormat, chat_messages, plain_prompt
from tests.conftest import REPO, assert_user_error, run_persona
from tests.export.conftest import copy_run, files_under, set_status

META = ("tokenizer.chat_template", "tokenizer.ggml.add_bos_token", "tokenizer.chat_templates",
        "tokenizer.chat_template.ada_bell", "tokenizer.chat_template.ben_ortiz")


def _export(run: Path, *args: str, env: dict | None = None):
    return run_persona("export", "gguf", str(run), *args, env=env)


def _jinja(template: str, messages: list[dict], bos: str) -> str:
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=True,
                                        bos_token=bos, eos_token="<|im_end|>")
    return rendered[0]


@pytest.fixture(scope="module")
def chat_f16(chat_run, tmp_path_factory) -> Path:
    run = copy_run(chat_run, tmp_path_factory.mktemp("chat-f16"))
    result = _export(run, "--quant", "F16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].endswith(f"{run.name}/export/model-f16.gguf")
    return run


@pytest.fixture(scope="module")
def plain_f16(plain_run, tmp_path_factory) -> Path:
    run = copy_run(plain_run, tmp_path_factory.mktemp("plain-f16"))
    result = _export(run, "--quant", "f16")
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def test_f16_export_merges_converts_and_passes_parity(chat_f16):
    assert (chat_f16 / "merged" / "model.safetensors").is_file()  # merged first, since the run had none
    report = json.loads((chat_f16 / "export" / "model-f16.parity.json").read_text())
    assert report["file"] == "model-f16.gguf" and report["quant"] == "f16" and report["passed"] is True
    figures = report["backends"]["transformers"]
    assert figures["tokens"] == report["answer_tokens"] > 0
    assert figures["top1_agreement"] >= 0.99 and abs(figures["ppl_ratio"] - 1) <= 0.01
    assert figures["mean_abs_dlogprob"] < 0.01
    assert not list((chat_f16 / "export").glob(".gguf-*"))  # the work folder is gone


def test_chat_export_carries_the_runs_template_and_bos_handling(chat_f16):
    meta = read_metadata(chat_f16 / "export" / "model-f16.gguf", META)
    fmt = PromptFormat.from_json(json.loads((chat_f16 / "prompt_format.json").read_text()))
    assert meta["tokenizer.chat_template"] == fmt.chat_template
    # ChatML writes no BOS and chat training tokenised without special tokens: llama.cpp must not add one,
    # although this SentencePiece tokenizer adds BOS to plain text.
    assert meta["tokenizer.ggml.add_bos_token"] is False


def test_plain_export_gets_a_template_per_persona_that_renders_the_plain_style(plain_f16):
    meta = read_metadata(plain_f16 / "export" / "model-f16.gguf", META)
    assert meta["tokenizer.ggml.add_bos_token"] is True  # plain prompts were tokenised with BOS
    assert sorted(meta["tokenizer.chat_templates"]) == ["ada_bell", "ben_ortiz"]
    messages = chat_messages("You are Ben.", "Why bake at three?", ())
    expected = plain_prompt("You are Ben.", "Ben Ortiz", "Why bake at three?")
    assert _jinja(meta["tokenizer.chat_template.ben_ortiz"], messages, "<s>") == "<s>" + expected
    assert _jinja(meta["tokenizer.chat_template"], messages, "<s>").endswith("Human: Why bake at three?\n\nAda Bell:")


def test_the_gguf_round_trips_through_transformers(plain_f16):
    import torch
    from transformers import AutoModelForCausalLM

    from personaforge.models.fetch import _allow_bundled_gguf

    _allow_bundled_gguf()
    merged = AutoModelForCausalLM.from_pretrained(plain_f16 / "merged")
    exported = AutoModelForCausalLM.from_pretrained(plain_f16 / "export", gguf_file="model-f16.gguf",
                                                    dtype=torch.float32)
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46]])
    with torch.no_grad():
        a, b = merged(ids).logits, exported(ids).logits
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    assert float((a - b).abs().max()) < 0.05 * float(a.abs().max())


def test_llama_cpp_scores_the_file_and_renders_the_training_prompt_tokens(chat_f16, plain_f16):
    pytest.importorskip("llama_cpp")
    for run in (chat_f16, plain_f16):
        report = json.loads((run / "export" / "model-f16.parity.json").read_text())
        figures = report["backends"]["llama.cpp"]
        assert figures["passed"] is True and figures["top1_agreement"] >= 0.99, figures
        assert figures["tokens"] == report["answer_tokens"]
        # Scored in a child, the way runtimes load the file (weights repacked), with what llama.cpp saw of the CPU.
        assert figures["load"]["repack"] is True and figures["load"]["attempts"] == [{"repack": True, "crashed": None}]
        assert "CPU" in figures["load"]["system_info"]
        # The GGUF's template, rendered and tokenised by llama.cpp, gives the ids training used.
        assert report["prompt_tokens"]["identical"] is True and report["prompt_tokens"]["checked"] > 0


def test_exporting_again_replaces_the_file(chat_f16):
    path = chat_f16 / "export" / "model-f16.gguf"
    before = path.stat().st_mtime_ns
    result = _export(chat_f16, "--quant", "f16")
    assert result.returncode == 0, result.stderr[-2000:]
    assert path.stat().st_mtime_ns > before
    assert sorted(p.name for p in (chat_f16 / "export").iterdir()) == ["model-f16.gguf", "model-f16.parity.json"]


# ------------------------------------------------------------------------------------------ llama-quantize
FAKE_QUANTIZE = """#!{python}
# Stands in for llama.cpp's llama-quantize: copies its input{plant}.
import shutil, sys
source, out, kind = sys.argv[1:4]
shutil.copyfile(source, out)
{perturb}
"""
# A planted export bug: token embeddings shifted by one row (a vocabulary off by one).
PERTURB = """
import numpy as np
from gguf import GGUFReader
reader = GGUFReader(out, "r+")
tensor = next(t for t in reader.tensors if t.name == "token_embd.weight")
tensor.data[:] = np.roll(np.array(tensor.data), 1, axis=0)
reader.data.flush()
"""


def _fake_llama_cpp(folder: Path, plant: bool) -> Path:
    binary = folder / "build" / "bin" / "llama-quantize"
    binary.parent.mkdir(parents=True)
    binary.write_text(FAKE_QUANTIZE.format(python=sys.executable, plant=", then shifts the embeddings" if plant else "",
                                           perturb=PERTURB if plant else ""))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    return folder


def test_k_quants_run_llama_quantize_found_under_llama_cpp_dir(chat_f16, tmp_path):
    fake = _fake_llama_cpp(tmp_path / "llama.cpp", plant=False)
    result = _export(chat_f16, "--quant", "q4_k_m", env={"LLAMA_CPP_DIR": str(fake)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (chat_f16 / "export" / "model-Q4_K_M.gguf").is_file()
    assert json.loads((chat_f16 / "export" / "model-Q4_K_M.parity.json").read_text())["passed"] is True


def test_a_planted_mismatch_fails_the_parity_check_with_the_figures(chat_f16, tmp_path):
    fake = _fake_llama_cpp(tmp_path / "llama.cpp", plant=True)
    result = _export(chat_f16, "--quant", "Q5_K_M", env={"LLAMA_CPP_DIR": str(fake)})
    assert result.returncode == 1, result.stderr[-3000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "parity check failed for model-Q5_K_M.gguf" in error[0]
    assert "transformers: top-1" in error[0] and "FAILED" in error[0]
    assert not (chat_f16 / "export" / "model-Q5_K_M.gguf").exists()  # never under the name users load
    assert (chat_f16 / "export" / "model-Q5_K_M.gguf.failed").is_file()
    report = json.loads((chat_f16 / "export" / "model-Q5_K_M.parity.json").read_text())
    assert report["passed"] is False and report["backends"]["transformers"]["top1_agreement"] < 0.9


# ------------------------------------------------------------------------------------------------ bad input
def test_export_of_a_failed_run_is_a_user_error_and_writes_nothing(chat_run, tmp_path):
    run = copy_run(chat_run, tmp_path)
    for status in ("failed", "interrupted"):
        set_status(run, status)
        before = files_under(run)
        assert_user_error(_export(run), f"is {status}", "only a finished run can be exported")
        assert files_under(run) == before


def test_unknown_quant_type_lists_the_valid_ones(chat_run):
    before = files_under(chat_run)
    message = assert_user_error(_export(chat_run, "--quant", "q3_x"), "--quant q3_x", "f16", "q8_0", "Q4_K_M")
    assert "bf16" in message
    assert files_under(chat_run) == before


def test_k_quant_without_llama_quantize_says_what_to_install(chat_run, tmp_path):
    # Neither the binary (not on PATH, not under LLAMA_CPP_DIR) nor llama-cpp-python (shadowed by a package
    # that fails to import, as an uninstalled one does).
    shadow = tmp_path / "shadow" / "llama_cpp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('not installed')\n")
    before = files_under(chat_run)
    env = {"LLAMA_CPP_DIR": str(tmp_path), "PATH": os.path.dirname(sys.executable) + os.pathsep + "/usr/bin:/bin",
           "PYTHONPATH": f"{shadow.parent}{os.pathsep}{REPO / 'src'}"}
    message = assert_user_error(_export(chat_run, "--quant", "Q4_K_M", env=env), "llama-quantize", "LLAMA_CPP_DIR")
    assert "cmake" in message and "personaforge[llama]" in message
    assert files_under(chat_run) == before


def test_quant_names_and_model_slugs():
    assert parse_quant("Q8_0").name == "q8_0" and parse_quant("bf16").converter_type == "bf16"
    assert parse_quant("q4_k_m").name == "Q4_K_M" and parse_quant("q4_k_m").converter_type == "f16"
    assert model_slug("pkg:smollm2-135m-instruct") == "smollm2-135m-instruct"
    assert model_slug("meta-llama/Llama-3.1-8B-Instruct") == "Llama-3.1-8B-Instruct"
    assert model_slug("/models/my model/") == "my-model"
    assert model_slug("gguf:/x/SmolLM2.Q4_1.gguf") == "SmolLM2.Q4_1"
