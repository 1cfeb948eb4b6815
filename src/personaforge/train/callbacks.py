"""Trainer callbacks: the NaN / gradient-spike watchdog and Ctrl-C handling. (The progress bar is the command line's:
cli/progress.py, handed in as a ProgressFactory.)"""

from __future__ import annotations

import math
import signal
import statistics
import sys
from collections import deque
from collections.abc import Callable

from transformers import TrainerCallback

# Given a () -> real (non-pad) tokens processed so far, a callback that shows training progress.
ProgressFactory = Callable[[Callable[[], int]], TrainerCallback]


class TrainingStopped(Exception):
    """The watchdog stopped the run; the message says why and what to change."""


class WatchdogCallback(TrainerCallback):
    """Stop on a NaN/inf loss, or a gradient norm far above its running median."""

    def __init__(self, spike_factor: float, window: int = 50, warmup: int = 10) -> None:
        self.spike_factor = spike_factor
        self.norms: deque[float] = deque(maxlen=window)
        self.warmup = warmup

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(loss):
            raise TrainingStopped(f"loss became {loss} at step {state.global_step}; lower train.lr or check the data")
        norm = logs.get("grad_norm")
        if norm is None:
            return
        norm = float(norm)
        if not math.isfinite(norm):
            raise TrainingStopped(f"gradient norm became {norm} at step {state.global_step}; lower train.lr")
        if len(self.norms) >= self.warmup:
            median = statistics.median(self.norms)
            if median > 0 and norm > self.spike_factor * median:
                raise TrainingStopped(
                    f"gradient norm spiked to {norm:.3g} at step {state.global_step}, {norm / median:.0f}× the running"
                    f" median {median:.3g}; lower train.lr or raise train.grad_spike_factor"
                )
        self.norms.append(norm)


class InterruptCallback(TrainerCallback):
    """First Ctrl-C: save a checkpoint at the end of the current step and stop. A second one aborts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def install(self) -> None:
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort)", file=sys.stderr, flush=True)

        try:
            self._previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread (e.g. inside a test runner thread)
            self._previous = None

    def uninstall(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True
        return control
