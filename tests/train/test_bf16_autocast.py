"""bf16 on a CPU end to end: with a planted "fast bf16" probe, `persona train` autocasts in bf16 over float32 weights
on any machine; the merge check stays float32; evaluation re-makes the probe's choice on the CPU it runs on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from personaforge import cpu_dtype
from tests.conftest import run_persona
from tests.train.conftest import write_config


def plant(home: Path, fp32: float, bf16: float, threads: list[int]) -> None:
    """Cached probes for this machine, as if measured: the CLI then decides from these figures."""
    probes = {}
    for count in threads:
        key = cpu_dtype.cache_key(count)
        probe = cpu_dtype.Probe(key["cpu"], key["torch"], count, fp32, bf16, 0.2)
        probes[cpu_dtype._key_text(key)] = {k: v for k, v in probe.to_json().items() if k != "cached"}
    home.mkdir(parents=True, exist_ok=True)
    (home / cpu_dtype.CACHE_FILE).write_text(json.dumps({"version": cpu_dtype.VERSION, "probes": probes}))


def test_auto_bf16_trains_with_autocast_and_keeps_float32_where_numbers_are_compared(
        tmp_path: Path, tiny_model: Path, tiny_dataset: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("PERSONAFORGE_HOME", str(home))
    here = torch.get_num_threads()
    plant(home, 346.0, 2267.0, threads=sorted({1, here}))  # the AMX machine of issue 23; train.threads is 1
    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"max_steps": 2})
    result = run_persona("train", str(config), env={"PERSONAFORGE_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert ("note: dtype: bfloat16 autocast over float32 weights (auto: this CPU multiplies bf16 matrices 6.6× as"
            " fast as fp32: bf16 2,267.0 vs fp32 346.0 GFLOP/s") in result.stderr
    run = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    env = json.loads((run / "env.json").read_text())
    assert env["dtype"] == "bfloat16"
    precision = env["precision"]
    assert (precision["weights"], precision["autocast"], precision["requested"]) == ("float32", "bfloat16", "auto")
    assert precision["cpu_probe"]["bf16_gflops"] == 2267.0 and precision["cpu_probe"]["threads"] == 1
    adapter = load_file(run / "adapter" / "adapter_model.safetensors")
    assert {t.dtype for t in adapter.values()} == {torch.float32}  # LoRA parameters stay float32
    metrics = json.loads((run / "train_metrics.json").read_text())
    assert metrics["dtype"] == "bfloat16" and metrics["final_loss"] > 0

    merged = run_persona("merge", str(run), env={"PERSONAFORGE_HOME": str(home)})
    assert merged.returncode == 0, merged.stderr
    check = json.loads((run / "merged" / "merge_check.json").read_text())
    assert check["dtype"] == "float32" and check["max_abs_logit_diff"] <= check["tolerance"]  # compared in fp32

    from personaforge.evaluate.runner import load_for_eval
    from personaforge.train.run import Run

    run_obj = Run(run)
    lines: list[str] = []
    loaded = load_for_eval(run_obj, run_obj.train_config(), baseline=False, log=lines.append)
    assert next(loaded.model.parameters()).dtype is torch.bfloat16  # generation in bf16 weights, as chosen here
    assert any(line.startswith("dtype: bfloat16 weights (auto: this CPU multiplies") for line in lines)
    plant(home, 94.6, 23.5, threads=[here])  # the same run evaluated on a CPU without fast bf16
    loaded = load_for_eval(run_obj, run_obj.train_config(), baseline=False, log=lambda line: None)
    assert next(loaded.model.parameters()).dtype is torch.float32


def test_forced_bf16_trains_on_any_cpu(tmp_path: Path, tiny_model: Path, tiny_dataset: Path) -> None:
    config = write_config(tmp_path, tiny_model, tiny_dataset, model={"dtype": "bfloat16"}, train={"max_steps": 2})
    result = run_persona("train", str(config), env={"PERSONAFORGE_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert "note: dtype: bfloat16 autocast over float32 weights (model.dtype: bfloat16)" in result.stderr
    assert not (tmp_path / "home" / cpu_dtype.CACHE_FILE).exists()  # forced: nothing measured
    run = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    env = json.loads((run / "env.json").read_text())
    assert env["precision"] == {"dtype": "bfloat16", "weights": "float32", "autocast": "bfloat16",
                                "requested": "bfloat16", "reason": "model.dtype: bfloat16"}
