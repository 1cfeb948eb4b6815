"""Trainer callbacks: rich progress, the NaN / gradient-spike watchdog, and Ctrl-C handling."""

from __future__ import annotations

import math
import signal
import statistics
import time
from collections import deque

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback


class TrainingStopped(Exception):
    """The watchdog stopped the run; the message says why and what to change."""


class RichProgressCallback(TrainerCallback):
    """A progress bar on stderr with loss, tokens/s and ETA (main process only)."""

    def __init__(self, token_counter) -> None:
        self.token_counter = token_counter  # () -> real (non-pad) tokens processed so far
        self.progress: Progress | None = None
        self.task = None
        self.started = 0.0
        self.tokens_at_start = 0

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.progress = Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=False)
        self.progress.start()
        self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step, info="")
        self.started = time.perf_counter()
        self.tokens_at_start = self.token_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.progress is None or not logs:
            return
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = (self.token_counter() - self.tokens_at_start) / elapsed
        parts = []
        if "loss" in logs:
            parts.append(f"loss {logs['loss']:.4f}")
        if "eval_loss" in logs:
            parts.append(f"val {logs['eval_loss']:.4f}")
        parts.append(f"{rate:,.0f} tok/s")
        self.progress.update(self.task, info="  ".join(parts))

    def on_train_end(self, args, state, control, **kwargs):
        if self.progress is not None:
            self.progress.update(self.task, completed=state.global_step)
            self.progress.stop()
            self.progress = None


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
            Console(stderr=True).print("\ninterrupt: saving a checkpoint after this step (Ctrl-C again to abort)")

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
