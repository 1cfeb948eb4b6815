"""`persona export ollama`: a Modelfile per persona next to the GGUF, reproducing the run's own prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from personaforge.export.ollama import render_go
from personaforge.export.parity import llama_cpp_available
from personaforge.prompting import PromptFormat, conversation_from_record
from tests.conftest import assert_user_error, run_persona
from tests.export.conftest import copy_run, files_under, set_status
from tests.export.modelfile_parser import parse_modelfile


def _modelfile(run: Path, slug: str) -> dict:
    parsed = parse_modelfile((run / "export" / f"Modelfile.{slug}").read_text(encoding="utf-8"))
    values: dict = {"stop": []}
    for key, value in parsed:
        if key == "stop":
            values["stop"].append(value)
        else:
            values[key] = value
    return values


def _eval_conversations(run: Path) -> list:
    config = (run / "config.yaml").read_text()
    data = Path(next(line.split(": ", 1)[1] for line in config.splitlines() if line.strip().startswith("path: ")))
    records = [json.loads(line) for line in (data / "eval.jsonl").read_text().splitlines() if line.strip()]
    return [c for r in records if (c := conversation_from_record(r)) is not None]


def _reproduces_training_prompts(run: Path) -> None:
    """Every eval record of the run, rendered by its persona's TEMPLATE + SYSTEM, is the training prompt text."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run / "merged")
    fmt = PromptFormat.from_json(json.loads((run / "prompt_format.json").read_text()))
    personas = json.loads((run / "personas.json").read_text())["personas"]
    slugs = {p["name"]: p["name"].lower().replace(" ", "-") for p in personas}
    conversations = _eval_conversations(run)
    assert conversations
    for conversation in conversations:
        modelfile = _modelfile(run, slugs[conversation.name])
        assert modelfile["system"] == conversation.system.strip()
        expected, _ = fmt.render(conversation, tokenizer)
        assert render_go(modelfile["template"], conversation) == expected


@pytest.fixture(scope="module")
def chat_exported(chat_run, tmp_path_factory):
    run = copy_run(chat_run, tmp_path_factory.mktemp("ollama-chat"))
    assert run_persona("export", "gguf", str(run), "--quant", "f16").returncode == 0
    result = run_persona("export", "ollama", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    return run, result.stdout


def test_chat_run_gets_one_chatml_modelfile_per_persona_from_the_newest_gguf(chat_exported):
    chat_exported, _ = chat_exported
    names = sorted(p.name for p in (chat_exported / "export").glob("Modelfile.*"))
    assert names == ["Modelfile.ada-bell", "Modelfile.ben-ortiz"]
    ada = _modelfile(chat_exported, "ada-bell")
    assert ada["from"] == "./model-f16.gguf"
    assert ada["template"].startswith("{{- if .System }}<|im_start|>system")
    assert ada["stop"] == ["<|im_start|>", "<|im_end|>"]
    assert ada["temperature"] == "0.7" and ada["top_p"] == "0.9" and ada["num_predict"] == "24"
    assert ada["repeat_penalty"] == "1.2"  # eval.repetition_penalty's default
    assert "Ada Bell" in ada["system"]
    _reproduces_training_prompts(chat_exported)


def test_llama_cpp_tokenises_the_modelfile_templates_as_training_did(chat_exported):
    pytest.importorskip("llama_cpp")
    _, stdout = chat_exported
    assert "prompt tokens: identical to training (6 prompts through llama.cpp)" in stdout  # 2 personas x 3 probes


def test_plain_run_without_a_gguf_exports_q8_0_first(plain_run, tmp_path):
    run = copy_run(plain_run, tmp_path)
    result = run_persona("export", "ollama", str(run))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no GGUF in the run yet: exporting q8_0 first" in result.stderr
    if llama_cpp_available():  # plain prompts: BOS from the GGUF's add_bos_token, the rest from the TEMPLATE
        assert "prompt tokens: identical to training (6 prompts through llama.cpp)" in result.stdout
    assert (run / "export" / "model-q8_0.gguf").is_file()
    ben = _modelfile(run, "ben-ortiz")
    assert ben["from"] == "./model-q8_0.gguf"
    assert ben["stop"] == ["\n\nHuman:", "\n\nAda Bell:", "\n\nBen Ortiz:"]
    assert "Ben Ortiz:" in ben["template"] and "Ada Bell" not in ben["template"]
    _reproduces_training_prompts(run)


def test_ollama_export_of_a_failed_run_writes_nothing(chat_run, tmp_path):
    run = copy_run(chat_run, tmp_path)
    set_status(run, "failed")
    before = files_under(run)
    assert_user_error(run_persona("export", "ollama", str(run)), "is failed")
    assert files_under(run) == before
