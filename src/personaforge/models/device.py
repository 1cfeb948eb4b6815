"""Device, dtype and precision choice: decided once per run, from the hardware and what the config asks."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from personaforge.errors import PersonaForgeError


# ---------------------------------------------------------------------------------------- device, dtype
def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_bf16() -> bool:
    check = getattr(torch.backends.mps, "is_macos_or_newer", None)
    return bool(check and check(14, 0))  # MPS gained bfloat16 with macOS 14


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """model.dtype, decided once: the dtype the model computes in, the dtype its weights are loaded in, and why.

    On a GPU both are the same (bf16 or fp16 weights; the Trainer autocasts, LoRA parameters stay float32). On a
    CPU the weights stay float32 for training (the master weights), and bf16 (auto on a CPU that the probe found
    fast in bf16, or model.dtype: bfloat16) means torch.autocast over them. ``probe`` holds the CPU probe's
    figures when auto decided by measuring (cpu_dtype.py).
    """

    dtype: torch.dtype
    weights: torch.dtype
    requested: str
    reason: str
    probe: dict | None = None

    @property
    def autocast(self) -> torch.dtype | None:
        """The dtype to autocast to over the loaded weights, or None."""
        return self.dtype if self.dtype != self.weights else None

    def describe(self, inference: bool = False) -> str:
        """One line for the console: what runs in which dtype, and why."""
        if inference or not self.autocast:
            mode = f"{dtype_name(self.dtype)} weights" if inference and self.autocast else dtype_name(self.dtype)
        else:
            mode = f"{dtype_name(self.dtype)} autocast over {dtype_name(self.weights)} weights"
        return f"{mode} ({self.reason})"

    def to_json(self) -> dict:
        data = {"dtype": dtype_name(self.dtype), "weights": dtype_name(self.weights),
                "autocast": dtype_name(self.autocast) if self.autocast else None, "requested": self.requested,
                "reason": self.reason}
        if self.probe is not None:
            data["cpu_probe"] = self.probe
        return data


def _cpu_auto(threads: int | None) -> Precision:
    """model.dtype auto on a CPU: bf16 autocast only where the probe measured bf16 clearly faster."""
    from personaforge import cpu_dtype

    probe = cpu_dtype.cached_probe(threads)
    use_bf16, reason = cpu_dtype.choose(probe)
    return Precision(torch.bfloat16 if use_bf16 else torch.float32, torch.float32, "auto", f"auto: {reason}",
                     probe.to_json())


def pick_precision(requested: str, device: torch.device, *, threads: int | None = None) -> Precision:
    """model.dtype → Precision. ``threads`` (train.threads) is the thread count the CPU probe measures with."""
    kind = torch.device(device).type
    cuda_bf16 = kind == "cuda" and torch.cuda.is_bf16_supported()
    if requested == "auto":
        if kind == "cuda":
            dtype = torch.bfloat16 if cuda_bf16 else torch.float16  # fp16 trains with loss scaling
            return Precision(dtype, dtype, requested, "auto: the fastest dtype this GPU trains in")
        if kind == "mps":
            dtype = torch.bfloat16 if _mps_bf16() else torch.float16
            return Precision(dtype, dtype, requested, "auto on Apple MPS")
        if kind == "cpu":
            return _cpu_auto(threads)
        return Precision(torch.float32, torch.float32, requested, f"auto on {kind}")
    if requested not in DTYPES:
        raise PersonaForgeError(f"model.dtype: unknown '{requested}'; use auto, float32, bfloat16 or float16")
    if requested == "float16" and kind == "cpu":
        # CPU autocast and gradient scaling in float16 are poorly supported and slow; training would misbehave.
        raise PersonaForgeError("model.dtype: float16 is not supported for training on CPU; use float32 (or auto),"
                                " or bfloat16 on a CPU with bf16 support")
    if requested == "bfloat16" and kind == "cuda" and not cuda_bf16:
        raise PersonaForgeError("model.dtype: this GPU has no bfloat16 support; use float16 or auto")
    if requested == "bfloat16" and kind == "mps" and not _mps_bf16():
        raise PersonaForgeError("model.dtype: bfloat16 on Apple MPS needs macOS 14 or newer; use float16 or auto")
    dtype = DTYPES[requested]
    if kind == "cpu" and dtype == torch.bfloat16:
        return Precision(dtype, torch.float32, requested, "model.dtype: bfloat16")
    return Precision(dtype, dtype, requested, f"model.dtype: {requested}")


def pick_dtype(requested: str, device: torch.device, *, threads: int | None = None) -> torch.dtype:
    """model.dtype → the dtype the model computes in (see pick_precision for the weights' dtype and why)."""
    return pick_precision(requested, device, threads=threads).dtype


def weights_dtype(requested: str, device: torch.device) -> torch.dtype:
    """The dtype training loads the weights in, without probing: float32 on a CPU whether or not bf16 autocasts."""
    if torch.device(device).type == "cpu" and requested in ("auto", "bfloat16"):
        return torch.float32
    return pick_precision(requested, device).weights


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
