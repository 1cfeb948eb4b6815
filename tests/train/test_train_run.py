"""Training end to end on the tiny model: run folder, statuses, resume equivalence, watchdog, merge, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, assert_user_error, run_persona
from tests.train.conftest import write_config

RUN_FILES = {"config.yaml", "env.json", "data.json", "status.json", "train_metrics.json", "prompt_format.json",
             "adapter", "checkpoints", "logs"}


def _run_path(result) -> Path:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("run: "), result.stdout
    return Path(last.removeprefix("run: "))


def _adapter(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "adapter" / "adapter_model.safetensors")


def test_train_leaves_a_complete_run_folder(tmp_path, tiny_model, tiny_dataset):
    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"epochs": 2})
    result = run_persona("train", str(config), "train.seed=1")
    assert result.returncode == 0, result.stderr
    run = _run_path(result)
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert (tmp_path / "runs" / "latest").resolve() == run.resolve()
    metrics = json.loads((run / "train_metrics.json").read_text())
    records = sum(1 for _ in (tiny_dataset / "train.jsonl").open())
    assert metrics["steps"] == 2 * -(-records // 4)  # two epochs of ceil(records / batch) steps
    assert metrics["tokens_per_s"] > 0 and metrics["peak_memory_bytes"] > 0 and metrics["final_loss"] > 0
    data = json.loads((run / "data.json").read_text())
    assert data["train"]["kept"] == records and data["prompt_style"] == "chat"
    assert set(data["files"]) == {str(tiny_dataset / "train.jsonl"), str(tiny_dataset / "eval.jsonl")}
    assert "seed: 1" in (run / "config.yaml").read_text()  # the resolved config, overrides applied
    env = json.loads((run / "env.json").read_text())
    assert env["device"] == "cpu" and env["trust_remote_code"] is False
    # model.dtype auto on a CPU: bf16 autocast only where the probe measured it clearly faster (tests/test_cpu_dtype.py)
    assert env["dtype"] == env["precision"]["dtype"] in ("float32", "bfloat16") and env["precision"]["cpu_probe"]
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "logs").iterdir())
    assert (run / "adapter" / "adapter_config.json").exists()
    listing = run_persona("runs", "list", "--runs-dir", str(tmp_path / "runs"))
    assert run.name in listing.stdout and "finished" in listing.stdout


def test_loss_goes_down_on_repeated_data(tmp_path, tiny_model, tiny_dataset):
    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"epochs": 6, "lr": 3e-2, "warmup_ratio": 0.0})
    result = run_persona("train", str(config))
    assert result.returncode == 0, result.stderr
    history = json.loads((_run_path(result) / "train_metrics.json").read_text())["loss_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    # A random 32-wide model can only move so far through LoRA; 0.05 nats is ~5x the step-to-step noise.
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _start_training(config: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-m", "personaforge", "train", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("how", ["sigint", "sigkill"])
def test_resume_after_interruption_reaches_the_same_weights(tmp_path, tiny_model, tiny_dataset, how):
    sections = {"train": {"epochs": 3, "save_every": 2, "save_total_limit": 3, "lr": 2e-3},
                "lora": {"r": 4, "alpha": 8, "dropout": 0.1}}
    whole = run_persona("train", str(write_config(tmp_path / "a", tiny_model, tiny_dataset, **sections)))
    assert whole.returncode == 0, whole.stderr
    reference = _adapter(_run_path(whole))

    config = write_config(tmp_path / "b", tiny_model, tiny_dataset, **sections)
    process = _start_training(config)
    runs = tmp_path / "b" / "runs"
    _wait_for(runs, process)
    run = next(p for p in runs.iterdir() if p.is_dir())
    _wait_for(run / "checkpoints" / "checkpoint-2" / "trainer_state.json", process)
    os.kill(process.pid, signal.SIGINT if how == "sigint" else signal.SIGKILL)
    process.communicate(timeout=240)
    listing = run_persona("runs", "list", "--runs-dir", str(runs))
    assert ("interrupted" if how == "sigint" else "stale") in listing.stdout, listing.stdout
    resumed = run_persona("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    weights = _adapter(run)
    assert weights.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(weights[name], reference[name], atol=1e-6), name


def test_watchdog_stops_a_diverging_run(tmp_path, tiny_model, tiny_dataset):
    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"epochs": 3, "lr": 1e4, "max_grad_norm": 1e9,
                                                                      "grad_spike_factor": 5.0})
    result = run_persona("train", str(config))
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and ("became nan" in error[0] or "spiked" in error[0]), result.stderr
    status = json.loads((_run_path(result) / "status.json").read_text())
    assert status["status"] == "failed" and status["message"] in error[0]
    assert not (tmp_path / "runs" / "latest").exists()  # latest moves only when a run finishes


def test_merge_writes_verified_weights(tmp_path, tiny_model, tiny_dataset):
    result = run_persona("train", str(write_config(tmp_path, tiny_model, tiny_dataset, train={"max_steps": 3})))
    assert result.returncode == 0, result.stderr
    run = _run_path(result)
    merged = run_persona("merge", str(run))
    assert merged.returncode == 0, merged.stderr
    check = json.loads((run / "merged" / "merge_check.json").read_text())
    assert check["max_abs_logit_diff"] <= check["tolerance"] and check["dtype"] == "float32"
    assert (run / "merged" / "model.safetensors").exists() and (run / "merged" / "prompt_format.json").exists()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(run / "merged")
    assert not any("lora" in name for name, _ in model.named_parameters())


def test_merge_refuses_when_logits_differ(tmp_path, tiny_model, tiny_dataset, monkeypatch):
    from peft.tuners.lora import LoraModel

    from personaforge.merge import MergeCheckFailed, merge_run
    from personaforge.train.run import Run

    result = run_persona("train", str(write_config(tmp_path, tiny_model, tiny_dataset, train={"max_steps": 2})))
    run = _run_path(result)
    original = LoraModel.merge_and_unload

    def broken(self, *args, **kwargs):
        model = original(self, *args, **kwargs)
        with torch.no_grad():
            model.lm_head.weight.add_(0.5)
        return model

    monkeypatch.setattr(LoraModel, "merge_and_unload", broken)
    with pytest.raises(MergeCheckFailed, match="differ by up to"):
        merge_run(Run(run), log=lambda m: None)
    assert not (run / "merged").exists()


def test_user_errors_exit_2_before_any_run_folder(tmp_path, tiny_model, tiny_dataset):
    runs = tmp_path / "runs"
    cases = [
        ({"model": {"name": "pkg:no-such-model"}}, "pkg:no-such-model"),
        ({"model": {"name": str(tmp_path / "missing-model")}}, "missing-model"),
        ({"model": {"quantization": "4bit"}}, "CUDA"),
        ({"data": {"path": str(tmp_path / "no-data")}}, "no-data"),
        ({"data": {"max_length": 16}}, "no usable sample"),
        ({"lora": {"target_modules": ["nonexistent_proj"]}}, "nonexistent_proj"),
    ]
    for sections, needle in cases:
        config = write_config(tmp_path, tiny_model, tiny_dataset, **sections)
        result = run_persona("train", str(config))
        assert_user_error(result, needle)
        assert not runs.exists() or not any(runs.iterdir()), (needle, list(runs.iterdir()))
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a folder")
    config = write_config(tmp_path, tiny_model, tiny_dataset, output={"dir": str(blocked / "runs")})
    assert_user_error(run_persona("train", str(config)), "output.dir")
    config.write_text(config.read_text() + "\nlora_rank: 4\n")
    assert_user_error(run_persona("train", str(config)), "lora_rank")


def test_merge_and_resume_refuse_bad_runs(tmp_path, tiny_model, tiny_dataset):
    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"lr": 1e4, "max_grad_norm": 1e9,
                                                                      "grad_spike_factor": 2.0})
    failed = _run_path(run_persona("train", str(config)))
    assert_user_error(run_persona("merge", str(failed)), "failed", "only a finished run")
    assert_user_error(run_persona("merge", "latest", "--runs-dir", str(tmp_path / "runs")), "no finished run")
    assert_user_error(run_persona("train", "--resume", str(tmp_path / "nope")), "not found")
