"""Two processes on CPU (gloo DDP) and a few steps on the real embedded SmolLM2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, run_persona
from tests.train.conftest import write_config


def _run_path(stdout: str) -> Path:
    return Path(stdout.strip().splitlines()[-1].removeprefix("run: "))


def test_two_process_ddp_on_cpu_takes_the_expected_steps(tmp_path, tiny_model, tiny_dataset):
    records = sum(1 for _ in (tiny_dataset / "train.jsonl").open())
    one = run_persona("train", str(write_config(tmp_path / "one", tiny_model, tiny_dataset,
                                                train={"batch_size": 8, "epochs": 2})))
    assert one.returncode == 0, one.stderr
    config = write_config(tmp_path / "two", tiny_model, tiny_dataset, train={"batch_size": 4, "epochs": 2})
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "personaforge", "train", str(config)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    runs = [p for p in (tmp_path / "two" / "runs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1  # rank 0 made the folder, rank 1 used it
    metrics = json.loads((runs[0] / "train_metrics.json").read_text())
    single = json.loads((_run_path(one.stdout) / "train_metrics.json").read_text())
    assert metrics["steps"] == 2 * -(-records // 8) == single["steps"]
    assert abs(metrics["train_loss"] - single["train_loss"]) < 0.1 * single["train_loss"]
    assert json.loads((runs[0] / "env.json").read_text())["world_size"] == 2


def test_real_smollm2_learns_a_few_steps(tmp_path, tiny_dataset):
    lines = (tiny_dataset / "train.jsonl").read_text().splitlines()[:16]
    data = tmp_path / "sixteen.jsonl"
    data.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path, Path("unused"), data, train={"max_steps": 6, "batch_size": 8, "lr": 1e-3})
    config.write_text(config.read_text().replace("name: unused", "name: pkg:smollm2-135m-instruct"))
    result = run_persona("train", str(config), "lora.r=8", "lora.alpha=16", "train.threads=0")
    assert result.returncode == 0, result.stderr[-3000:]
    run = _run_path(result.stdout)
    history = json.loads((run / "train_metrics.json").read_text())["loss_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert len(losses) == 6 and losses[-1] < losses[0]
    assert (run / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((run / "env.json").read_text())["model_source"]["kind"] == "embedded"
