"""Weights load from safetensors only unless --allow-pickle (model.allow_pickle) says otherwise; runs record whether
pickle and trust_remote_code were allowed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from personaforge import models
from personaforge.config import ModelSection
from personaforge.errors import PersonaForgeError
from personaforge.train.run import Run
from tests.conftest import run_persona
from tests.train.conftest import write_config


def test_a_pickle_only_model_is_refused_unless_allowed(pickle_model, tiny_model):
    with pytest.raises(PersonaForgeError, match=r"pytorch_model\.bin.*can run code.*convert them.*--allow-pickle"):
        models.load_model(ModelSection(name=str(pickle_model)), device="cpu")
    allowed = models.load_model(ModelSection(name=str(pickle_model), allow_pickle=True), device="cpu")
    reference = models.load_model(ModelSection(name=str(tiny_model)), device="cpu")
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert torch.equal(allowed.model(ids).logits, reference.model(ids).logits)  # the same weights, unpickled


def test_safetensors_are_demanded_from_transformers(tiny_model, monkeypatch):
    seen = []

    def capture(where, config, kwargs, notes):
        seen.append(dict(kwargs))
        raise OSError("stop here")

    monkeypatch.setattr(models.load, "_from_pretrained", capture)
    for allow in (False, True):
        with pytest.raises(PersonaForgeError):
            models.load_model(ModelSection(name=str(tiny_model), allow_pickle=allow), device="cpu")
    assert seen[0]["use_safetensors"] is True and "use_safetensors" not in seen[1]
    assert seen[0]["trust_remote_code"] is False


def test_a_hub_repo_without_safetensors_is_refused(tiny_model, monkeypatch):
    """transformers' refusal under use_safetensors=True becomes the pickle message, not a raw OSError."""
    monkeypatch.setattr(models.load, "resolve_source", lambda name, **_: models.ModelSource("hub", str(tiny_model), name,
                                                                                        None))
    monkeypatch.setattr(models.load, "hub_unreachable_reason", lambda: None)

    def no_safetensors(where, config, kwargs, notes):
        raise OSError("owner/model does not appear to have a file named model.safetensors or"
                      " model.safetensors.index.json and thus cannot be loaded with `safetensors`.")

    monkeypatch.setattr(models.load, "_from_pretrained", no_safetensors)
    with pytest.raises(PersonaForgeError, match=r"model 'owner/model' has no safetensors weights.*--allow-pickle"):
        models.load_model(ModelSection(name="owner/model"), device="cpu")


@pytest.fixture(scope="module")
def pickle_run(tmp_path_factory, pickle_model, tiny_dataset) -> Path:
    folder = tmp_path_factory.mktemp("pickle-run")
    config = write_config(folder, pickle_model, tiny_dataset, train={"max_steps": 2})
    refused = run_persona("train", str(config))
    assert refused.returncode == 2 and "--allow-pickle" in refused.stderr and not (folder / "runs").exists()
    result = run_persona("train", str(config), "--allow-pickle", "model.trust_remote_code=true")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))


def test_the_run_records_that_pickle_and_remote_code_were_allowed(pickle_run):
    env = json.loads((pickle_run / "env.json").read_text())
    assert env["allow_pickle"] is True and env["trust_remote_code"] is True
    model = yaml.safe_load((pickle_run / "config.yaml").read_text())["model"]
    assert model["allow_pickle"] is True and model["trust_remote_code"] is True


def test_env_records_both_flags_off_by_default(tiny_model):
    from personaforge.config import TrainConfig
    from personaforge.train import _env

    cfg = TrainConfig.model_validate({"model": {"name": str(tiny_model)}, "data": {"path": "d"}})
    plan = SimpleNamespace(device=torch.device("cpu"), dtype=torch.float32, precision=None,
                           source=models.ModelSource("local", str(tiny_model), str(tiny_model), None))
    env = _env(plan, cfg)
    assert env["allow_pickle"] is False and env["trust_remote_code"] is False


def test_merge_of_a_pickle_run_uses_the_run_s_own_permission(pickle_run):
    from personaforge.merge import merge_run

    result = merge_run(Run(pickle_run), log=lambda message: None)
    assert (result.path / "model.safetensors").exists()  # what merge writes is safetensors, always
    assert not list(result.path.glob("*.bin"))


def test_a_pickle_adapter_is_refused_unless_allowed(pickle_run, tiny_model, tmp_path):
    from safetensors.torch import load_file

    from personaforge.evaluate.runner import load_for_eval

    run_dir = tmp_path / "run"
    shutil.copytree(pickle_run, run_dir, ignore=shutil.ignore_patterns("merged"))
    adapter = run_dir / "adapter"
    torch.save(load_file(adapter / "adapter_model.safetensors"), adapter / "adapter_model.bin")
    (adapter / "adapter_model.safetensors").unlink()
    run = Run(run_dir)
    cfg = run.train_config()
    safe_base = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": str(tiny_model),
                                                                             "allow_pickle": False})})
    with pytest.raises(PersonaForgeError, match=r"adapter folder .*adapter_model\.bin.*--allow-pickle"):
        load_for_eval(run, safe_base, baseline=False, log=lambda message: None)
    allowed = safe_base.model_copy(update={"model": safe_base.model.model_copy(update={"allow_pickle": True})})
    loaded = load_for_eval(run, allowed, baseline=False, log=lambda message: None)
    assert any("lora_" in name for name, _ in loaded.model.named_parameters())
