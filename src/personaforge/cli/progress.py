"""Progress on stderr: the data build's bars, and the training bar (handed to the train stage, which knows no rich)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.progress import Progress

from personaforge.cli.console import err_console

if TYPE_CHECKING:
    from transformers import TrainerCallback


class RichProgress:
    """Bridges the build's progress reports to a rich progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def task(self, description: str, total: int):
        task_id = self.progress.add_task(description, total=max(total, 1))
        return lambda: self.progress.advance(task_id)

    def warn(self, message: str) -> None:
        err_console.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)


def train_progress(token_counter: Callable[[], int]) -> TrainerCallback:
    """The training bar (a train.callbacks.ProgressFactory). Its module imports transformers, so it loads when training
    starts, not with every `persona` command."""
    from personaforge.cli.train_bar import TrainProgress

    return TrainProgress(token_counter)
