"""Shared by the benchmark scripts: paths, the machine's description, the bundled dataset, result files.

The scripts run from anywhere; they chdir to the repository root, because configs name paths relative to it.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "src") not in sys.path:
    sys.path.insert(0, str(REPO / "src"))
RESULTS = REPO / "bench" / "results"
TRAIN_CONFIG = REPO / "configs" / "train" / "smollm2_135m_instruct.yaml"
DATA_CONFIG = REPO / "configs" / "data" / "default.yaml"
MODEL = "pkg:smollm2-135m-instruct"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    import torch

    info = {"host": socket.gethostname(), "cpu": cpu_name(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def build_bundled_dataset(out: Path) -> Path:
    """data/default exactly as `persona data build configs/data/default.yaml` builds it, but into ``out``.

    Building a private copy keeps the benchmark independent of whatever state data/default is in, and never
    touches it; the build is seeded, so the records are the same.
    """
    from personaforge.config import load_data_config
    from personaforge.dataset.build import build_dataset

    if (out / "train.jsonl").exists():
        return out
    cwd = os.getcwd()
    os.chdir(REPO)  # the config's transcript paths are relative to the repository root
    try:
        config, _ = load_data_config(DATA_CONFIG)
        build_dataset(config.model_copy(update={"out": str(out)}))
    finally:
        os.chdir(cwd)
    return out


def matmul_peak_flops(threads: int, size: int = 2048, repeats: int = 5, dtype: str = "float32") -> float:
    """Dense matmul FLOP/s on this machine in ``dtype`` with ``threads`` torch threads: best of ``repeats``."""
    import torch

    torch.set_num_threads(threads)
    a, b = (torch.randn(size, size).to(getattr(torch, dtype)) for _ in range(2))
    torch.matmul(a, b)  # warm-up: thread pool, caches, oneDNN's kernel choice
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def matmul_peaks(threads: int) -> dict[str, float]:
    """The fp32 and the bf16 matmul peak (FLOP/s). bf16 is measured on every CPU: where it has no bf16
    instructions, the figure is torch's emulation, which is what a bf16 run there would get."""
    return {dtype: matmul_peak_flops(threads, dtype=dtype) for dtype in ("float32", "bfloat16")}


def write_json(path: Path, data: dict) -> None:
    from personaforge.fileio import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def result_path() -> Path:
    return RESULTS / f"{date.today().isoformat()}-{socket.gethostname()}.json"


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"
