"""What every part of models/ shares: the log callback type, stderr logging, quieter transformers."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


Log = Callable[[str], None]
PROVENANCE = "personaforge_model.json"


def quiet_transformers() -> None:
    """Our own progress bars and notes say what is happening; transformers' per-load bars and
    deprecation chatter about its own internals only bury them."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)


def log_stderr(line: str) -> None:
    # Progress goes to stderr: stdout belongs to the command's result (`run: PATH`, an answer from `persona ask`).
    print(line, file=sys.stderr, flush=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
