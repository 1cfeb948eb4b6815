"""Native code (llama.cpp, the converter, llama-quantize) runs in a child process, never in ours.

A segmentation fault inside llama.cpp kills whatever process runs it. Measured: on Intel Xeons with AMX, llama.cpp's
AMX kernels for repacked q8_0 weights crash (llama.cpp issue 20824), and `persona export gguf` used to die with
exit 139 and no line saying why. In a child, the crash becomes a `NativeCrash` the command reports and survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from personaforge.fileio import display_path

# What a user can make of each signal a native child may die from.
SIGNAL_HINTS = {
    "SIGSEGV": "a crash inside native code",
    "SIGBUS": "a crash inside native code (bad memory access)",
    "SIGILL": "an instruction this CPU does not have: a build made for another CPU (rebuild it on this machine)",
    "SIGABRT": "native code aborted (an assertion failed)",
    "SIGFPE": "an arithmetic fault inside native code",
    "SIGKILL": "killed from outside, usually by the kernel for lack of memory",
}


class NativeCrash(Exception):
    """A child running native code died by a signal."""

    def __init__(self, what: str, signum: int, log: Path | None):
        self.what = what
        self.signal = signal_name(signum)
        self.log = log
        hint = SIGNAL_HINTS.get(self.signal, "killed by a signal")
        where = f"; its output is in {display_path(log)}" if log is not None else ""
        super().__init__(f"{what} crashed with {self.signal} ({hint}){where}")


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def died_by_signal(returncode: int) -> int | None:
    """The signal number a child died from (subprocess reports it as a negative return code), else None."""
    return -returncode if returncode < 0 else None


def child_env(**extra: str) -> dict[str, str]:
    # Offline, unbuffered, and faulthandler on: a crash dumps the child's Python stack into its log.
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            "PYTHONFAULTHANDLER": "1", **extra}


def run_child(command: list[str], what: str, log_file: Path, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run a command with its output captured into log_file; a death by signal raises NativeCrash."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w", encoding="utf-8", errors="replace") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, text=True, env=child_env(),
                                check=False, timeout=timeout)
    signum = died_by_signal(result.returncode)
    if signum is not None:
        raise NativeCrash(what, signum, log_file)
    return result
