"""Does this CPU do bfloat16 fast? Measured once per machine, not looked up in a table of CPU names.

    probe = cached_probe(threads)     # fp32 and bf16 matrix-product GFLOP/s; ~0.1–0.4 s the first time, then cached
    use_bf16, why = choose(probe)     # bf16 only where it is at least MARGIN times faster than fp32

Intel CPUs with AMX (and, less so, AVX512-BF16) multiply bf16 matrices several times faster than fp32; CPUs
without bf16 instructions emulate it and are slower in bf16 than in fp32. Which one a machine is shows in a
short product of two 1024×1024 matrices in each dtype. The result is cached under $PERSONAFORGE_HOME, keyed by
the CPU model, the torch version and the thread count: a different CPU (a home folder shared between machines),
a torch upgrade (other kernels) or another thread count measures again.
"""

from __future__ import annotations

import contextlib
import json
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

# bf16 is used only where its matrix products are at least this many times faster than fp32. Two reasons for 1.5:
# - A training step gains less than its matrix products do. On an Intel AMX machine (issue 23) products were 6.5×
#   faster in bf16 and a SmolLM2 LoRA step 2.1–2.5×: about two thirds of the fp32 step time scales with the
#   products, the rest (norms, softmax, optimizer, autocast's casts) does not. By that split a 1.5× product
#   gain gives ~1.3× per step, and a 1.2× gain only ~1.1×, which is not worth bf16's coarser rounding.
# - The probe is short and these machines are shared: repeated probes here spread by 10–20%, so a smaller margin
#   could flip the choice from one run to the next. CPUs with real bf16 hardware clear 1.5× by far (AVX512-BF16
#   about 2×, AMX 4–8×); CPUs without it measure below 1× (bf16 is emulated).
MARGIN = 1.5
SIZE = 1024            # 2.1 GFLOP per product: long enough to time, short enough for a probe well under a second
MIN_SECONDS = 0.06     # keep multiplying until this much time is spent in a dtype (best-of: noise only adds time)
MIN_REPEATS = {"float32": 3, "bfloat16": 1}  # fp32 is the yardstick; a slow bf16 product needs no second look
MAX_REPEATS = 50
VERSION = 1            # bump when the measurement changes: older cached figures are then measured again
CACHE_FILE = "cpu-dtype-probe.json"


@dataclass(frozen=True)
class Probe:
    """What one probe measured, and on what (the cache key: cpu, torch, threads)."""

    cpu: str
    torch: str
    threads: int
    fp32_gflops: float
    bf16_gflops: float
    seconds: float             # the probe's own wall time
    size: int = SIZE
    capability: str = ""       # torch's CPU kernel level (AVX2, AVX512, ...), for the record
    cached: bool = False       # read from the cache rather than measured in this process

    @property
    def ratio(self) -> float:
        return self.bf16_gflops / self.fp32_gflops if self.fp32_gflops > 0 else 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(ratio=round(self.ratio, 3), margin=MARGIN, fp32_gflops=round(self.fp32_gflops, 1),
                    bf16_gflops=round(self.bf16_gflops, 1), seconds=round(self.seconds, 3))
        return data

    def describe(self) -> str:
        return (f"bf16 {self.bf16_gflops:,.1f} vs fp32 {self.fp32_gflops:,.1f} GFLOP/s = {self.ratio:.2f}×"
                f" ({self.size}² matrix products, {self.threads} thread(s), {self.cpu}"
                f"{', cached' if self.cached else f', measured in {self.seconds:.2f} s'})")


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, macOS sysctl), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.split(":", 1)[0].strip() in ("model name", "Model", "cpu model"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                 timeout=5)
            if out.stdout.strip():
                return out.stdout.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cache_key(threads: int | None = None) -> dict:
    """What a cached probe is valid for: this CPU model, this torch, this many threads."""
    return {"cpu": cpu_model(), "torch": torch.__version__, "threads": int(threads or torch.get_num_threads())}


def _key_text(key: dict) -> str:
    return f"{key['cpu']} | torch {key['torch']} | {key['threads']} threads"


def cache_path() -> Path:
    from personaforge.home import personaforge_home

    return personaforge_home() / CACHE_FILE


@contextlib.contextmanager
def _threads(threads: int | None) -> Iterator[int]:
    before = torch.get_num_threads()
    if threads and threads != before:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _gflops(dtype: torch.dtype, size: int) -> float:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    torch.mm(a, b)  # warm-up: the thread pool, and oneDNN choosing and building its kernel
    name = str(dtype).removeprefix("torch.")
    best, spent, repeats = float("inf"), 0.0, 0
    while repeats < MIN_REPEATS[name] or (spent < MIN_SECONDS and repeats < MAX_REPEATS):
        start = time.perf_counter()
        torch.mm(a, b)
        elapsed = time.perf_counter() - start
        best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
    return 2 * size**3 / best / 1e9


def measure(threads: int | None = None, size: int = SIZE) -> Probe:
    """Time fp32 and bf16 matrix products now (no cache)."""
    with _threads(threads) as used, torch.no_grad():
        start = time.perf_counter()
        fp32 = _gflops(torch.float32, size)
        bf16 = _gflops(torch.bfloat16, size)
        seconds = time.perf_counter() - start
    capability = ""
    with contextlib.suppress(Exception):
        capability = str(torch.backends.cpu.get_cpu_capability())
    return Probe(cpu_model(), torch.__version__, used, fp32, bf16, seconds, size, capability)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("probes"), dict):
        return {}  # another probe version, or damaged: measure again and rewrite it
    return data


def _from_json(data: dict) -> Probe | None:
    fields = {k: data[k] for k in Probe.__dataclass_fields__ if k in data}
    try:
        probe = Probe(**fields)
        if probe.fp32_gflops > 0 and probe.bf16_gflops > 0:
            return replace(probe, cached=True)
    except (TypeError, ValueError):
        pass
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One process probes at a time (DDP ranks start together): the others then read its figures."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; at worst two processes measure
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_name(path.name + ".lock"), "a")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()


def cached_probe(threads: int | None = None, *, measure_fn: Callable[..., Probe] | None = None,
                 refresh: bool = False) -> Probe:
    """This machine's probe: from the cache when one matches (CPU model, torch version, threads), else measured
    and stored. A cache that cannot be read or written is not an error: the probe is measured again."""
    key = cache_key(threads)
    path = cache_path()
    with _locked(path):
        data = _read(path)
        entry = None if refresh else data.get("probes", {}).get(_key_text(key))
        probe = _from_json(entry) if isinstance(entry, dict) else None
        if probe is not None and (probe.cpu, probe.torch, probe.threads) == (key["cpu"], key["torch"], key["threads"]):
            return probe
        probe = (measure_fn or measure)(key["threads"])
        data = data or {"version": VERSION, "probes": {}}
        data["probes"][_key_text(key)] = {k: v for k, v in probe.to_json().items() if k != "cached"}
        with contextlib.suppress(OSError):
            from personaforge.fileio import atomic_write_text

            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(data, indent=2) + "\n")
        return probe


def choose(probe: Probe, margin: float = MARGIN) -> tuple[bool, str]:
    """(use bf16, why): bf16 only where its products are at least ``margin`` times as fast as fp32's."""
    if probe.ratio >= margin:
        return True, f"this CPU multiplies bf16 matrices {probe.ratio:.1f}× as fast as fp32: {probe.describe()}"
    return False, f"bf16 is not {margin}× faster than fp32 on this CPU: {probe.describe()}"


def main() -> None:
    """`python -m personaforge.cpu_dtype [--threads N] [--refresh]`: print this machine's probe and choice."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    parser.add_argument("--refresh", action="store_true", help="measure again even if cached")
    args = parser.parse_args()
    probe = cached_probe(args.threads, refresh=args.refresh)
    print(json.dumps({**probe.to_json(), "choice": "bfloat16" if choose(probe)[0] else "float32",
                      "cache": str(cache_path())}, indent=2))
    print(choose(probe)[1])


if __name__ == "__main__":
    main()
