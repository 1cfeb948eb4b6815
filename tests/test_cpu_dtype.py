"""model.dtype auto on a CPU: the bf16/fp32 probe, its cache, the decision, and where bf16 is (and is not) used.

Most tests mock the probe; one end-to-end test plants a "fast bf16" probe in a fresh PERSONAFORGE_HOME so that a real
`persona train` on the tiny model takes the bf16 autocast path on any machine, and checks what stays float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from personaforge import cpu_dtype, models
from personaforge.config import ModelSection
from tests.tiny import make_tiny_model

CPU = torch.device("cpu")


def fake_probe(fp32: float, bf16: float, threads: int = 2, **changes) -> cpu_dtype.Probe:
    fields = {"cpu": cpu_dtype.cpu_model(), "torch": torch.__version__, "threads": threads, "fp32_gflops": fp32,
              "bf16_gflops": bf16, "seconds": 0.2, **changes}
    return cpu_dtype.Probe(**fields)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONAFORGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class Measurements:
    """A stand-in for cpu_dtype.measure that counts its calls and returns chosen figures."""

    def __init__(self, fp32: float, bf16: float) -> None:
        self.fp32, self.bf16, self.calls = fp32, bf16, []

    def __call__(self, threads: int | None = None, size: int = cpu_dtype.SIZE) -> cpu_dtype.Probe:
        self.calls.append(threads)
        return fake_probe(self.fp32, self.bf16, threads=threads or torch.get_num_threads())


@pytest.fixture
def cpu_measures(home, monkeypatch: pytest.MonkeyPatch):
    """cpu_measures(fp32, bf16): the CPU probe measures these GFLOP/s (in a fresh PERSONAFORGE_HOME)."""
    def install(fp32: float, bf16: float) -> Measurements:
        fake = Measurements(fp32, bf16)
        monkeypatch.setattr(cpu_dtype, "measure", fake)
        return fake
    return install


# ------------------------------------------------------------------------------------------------ decision
def test_fast_bf16_chooses_bf16_autocast_over_float32_weights(cpu_measures) -> None:
    cpu_measures(346.0, 2267.0)  # the AMX machine of issue 23
    precision = models.pick_precision("auto", CPU, threads=2)
    assert (precision.dtype, precision.weights, precision.autocast) == (torch.bfloat16, torch.float32, torch.bfloat16)
    assert precision.probe["bf16_gflops"] == 2267.0 and precision.probe["fp32_gflops"] == 346.0
    assert precision.probe["ratio"] == pytest.approx(6.552, abs=1e-3) and precision.probe["margin"] == 1.5
    assert "bfloat16 autocast over float32 weights" in precision.describe()
    assert "6.6× as fast" in precision.reason and "2,267.0" in precision.reason
    assert precision.describe(inference=True).startswith("bfloat16 weights")
    assert models.pick_dtype("auto", CPU, threads=2) is torch.bfloat16


def test_slow_bf16_keeps_float32(cpu_measures) -> None:
    cpu_measures(94.6, 23.5)  # this repository's 2-core Xeon without AMX/AVX512-BF16: bf16 is emulated
    precision = models.pick_precision("auto", CPU, threads=2)
    assert (precision.dtype, precision.weights, precision.autocast) == (torch.float32, torch.float32, None)
    assert precision.probe["ratio"] == pytest.approx(0.248, abs=1e-3)
    assert precision.describe().startswith("float32 (auto: bf16 is not 1.5× faster")


@pytest.mark.parametrize(("bf16", "chosen"), [(149.0, torch.float32), (150.0, torch.bfloat16)])
def test_bf16_must_be_clearly_faster(cpu_measures, bf16: float, chosen: torch.dtype) -> None:
    cpu_measures(100.0, bf16)  # the margin: 1.49× is not enough, 1.5× is
    assert models.pick_dtype("auto", CPU, threads=2) is chosen


def test_forced_dtypes_win_and_do_not_probe(cpu_measures) -> None:
    fake = cpu_measures(346.0, 2267.0)
    assert models.pick_precision("float32", CPU).dtype is torch.float32  # fast bf16, but float32 asked for
    fake.fp32, fake.bf16 = 94.6, 23.5
    forced = models.pick_precision("bfloat16", CPU)  # slow bf16, but bf16 asked for
    assert (forced.dtype, forced.weights, forced.autocast, forced.probe) == (torch.bfloat16, torch.float32,
                                                                            torch.bfloat16, None)
    assert fake.calls == []
    with pytest.raises(models.PersonaForgeError, match="float16 is not supported for training on CPU"):
        models.pick_precision("float16", CPU)


def test_gpu_choice_does_not_probe(cpu_measures, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = cpu_measures(94.6, 23.5)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    precision = models.pick_precision("auto", torch.device("cuda"))
    assert (precision.dtype, precision.weights, precision.autocast) == (torch.bfloat16, torch.bfloat16, None)
    assert fake.calls == []


def test_memory_estimate_counts_float32_weights_on_a_cpu_without_probing(cpu_measures) -> None:
    from personaforge.config import TrainConfig

    fake = cpu_measures(346.0, 2267.0)
    cfg = TrainConfig.model_validate({"model": {"name": "x", "dtype": "bfloat16"}, "data": {"path": "d"}})
    estimate = models.estimate_memory(1_000_000_000, cfg, CPU, hidden=2048, layers=16, vocab=32000)
    assert "in float32" in estimate.plan and estimate.weights >= 4_000_000_000
    assert fake.calls == []


# ---------------------------------------------------------------------------------------------------- cache
def test_probe_is_cached_per_cpu_model_torch_version_and_threads(cpu_measures, home: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake = cpu_measures(94.6, 23.5)
    first = cpu_dtype.cached_probe(2)
    assert fake.calls == [2] and not first.cached
    again = cpu_dtype.cached_probe(2)
    assert fake.calls == [2] and again.cached and again.fp32_gflops == pytest.approx(94.6)
    stored = json.loads((home / cpu_dtype.CACHE_FILE).read_text())
    assert stored["version"] == cpu_dtype.VERSION
    assert cpu_dtype.cache_key(2) == {"cpu": cpu_dtype.cpu_model(), "torch": torch.__version__, "threads": 2}

    cpu_dtype.cached_probe(1)  # another thread count: measured again
    assert fake.calls == [2, 1]
    monkeypatch.setattr(torch, "__version__", "9.9.9+cpu")  # a torch upgrade: other kernels
    cpu_dtype.cached_probe(2)
    assert fake.calls == [2, 1, 2]
    monkeypatch.setattr(cpu_dtype, "cpu_model", lambda: "AMD EPYC 9654")  # the home folder seen from another machine
    cpu_dtype.cached_probe(2)
    assert fake.calls == [2, 1, 2, 2]
    assert len(json.loads((home / cpu_dtype.CACHE_FILE).read_text())["probes"]) == 4
    cpu_dtype.cached_probe(2)  # each of them is now cached
    assert fake.calls == [2, 1, 2, 2]


def test_cache_invalidation(cpu_measures, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = cpu_measures(94.6, 23.5)
    cpu_dtype.cached_probe(2)
    cpu_dtype.cached_probe(2, refresh=True)  # python -m personaforge.cpu_dtype --refresh
    assert fake.calls == [2, 2]
    monkeypatch.setattr(cpu_dtype, "VERSION", cpu_dtype.VERSION + 1)  # a changed probe: old figures are not reused
    cpu_dtype.cached_probe(2)
    assert fake.calls == [2, 2, 2]
    (home / cpu_dtype.CACHE_FILE).write_text("{ damaged")
    assert cpu_dtype.cached_probe(2).fp32_gflops == pytest.approx(94.6)
    assert fake.calls == [2, 2, 2, 2]
    assert json.loads((home / cpu_dtype.CACHE_FILE).read_text())["version"] == cpu_dtype.VERSION  # rewritten


def test_unwritable_cache_still_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PERSONAFORGE_HOME", str(blocker / "home"))
    fake = Measurements(346.0, 2267.0)
    monkeypatch.setattr(cpu_dtype, "measure", fake)
    assert models.pick_dtype("auto", CPU, threads=2) is torch.bfloat16
    assert models.pick_dtype("auto", CPU, threads=2) is torch.bfloat16
    assert fake.calls == [2, 2]  # nothing could be cached: measured each time, no error


def test_real_probe_is_short_and_sane(home: Path) -> None:
    probe = cpu_dtype.measure(threads=1)
    assert probe.fp32_gflops > 0 and probe.bf16_gflops > 0 and probe.threads == 1
    assert probe.seconds < 3.0  # ~0.4 s on this 2-core machine; generous for a loaded CI box
    assert torch.get_num_threads() >= 1


# ----------------------------------------------------------------------------------- where bf16 is applied
def test_trainer_autocasts_bf16_on_a_cpu() -> None:
    from personaforge.config import TrainConfig
    from personaforge.train.trainer import training_arguments

    cfg = TrainConfig.model_validate({"model": {"name": "x"}, "data": {"path": "d"}})
    args = training_arguments(cfg, "/tmp/unused", device=CPU, dtype=torch.bfloat16, has_validation=False)
    assert args.bf16 and args.use_cpu
    assert not training_arguments(cfg, "/tmp/unused", device=CPU, dtype=torch.float32, has_validation=False).bf16


def test_load_model_keeps_float32_weights_for_training_and_bf16_for_inference(tmp_path: Path) -> None:
    tiny = make_tiny_model(tmp_path / "tiny")
    cfg = ModelSection(name=str(tiny), dtype="bfloat16")
    training = models.load_model(cfg, device=CPU, log=lambda line: None)
    assert training.dtype is torch.float32 and next(training.model.parameters()).dtype is torch.float32
    assert training.precision.autocast is torch.bfloat16
    lines: list[str] = []
    generating = models.load_model(cfg, device=CPU, log=lines.append, inference=True)
    assert next(generating.model.parameters()).dtype is torch.bfloat16
    assert lines == ["dtype: bfloat16 weights (model.dtype: bfloat16)"]
