"""Fixtures for export tests: tiny models the GGUF converter accepts, trained briefly through the real CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_persona
from tests.export.tiny_gguf import make_gguf_tiny_model
from tests.train.conftest import tiny_dataset, write_config  # noqa: F401 - shared session fixture


def _train(folder: Path, model: Path, dataset: Path, style: str) -> Path:
    config = write_config(folder, model, dataset, train={"max_steps": 3}, data={"prompt_style": style},
                          eval={"max_new_tokens": 24, "temperature": 0.7, "top_p": 0.9})
    result = run_persona("train", str(config))
    assert result.returncode == 0, result.stderr[-3000:]
    return Path([l for l in result.stdout.splitlines() if l.startswith("run: ")][-1].removeprefix("run: "))


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory, tiny_dataset) -> Path:  # noqa: F811 - the shared fixture
    """A finished chat-style (ChatML) run of the tiny SentencePiece Llama; tests copy it before changing it."""
    root = tmp_path_factory.mktemp("export-chat")
    return _train(root, make_gguf_tiny_model(root / "model"), tiny_dataset, "chat")


@pytest.fixture(scope="session")
def plain_run(tmp_path_factory, tiny_dataset) -> Path:  # noqa: F811 - the shared fixture
    """A finished plain-style run (system / Human: / Name: turns) of the tiny model without a chat template."""
    root = tmp_path_factory.mktemp("export-plain")
    return _train(root, make_gguf_tiny_model(root / "model", chat_template=False), tiny_dataset, "plain")


def copy_run(run: Path, into: Path) -> Path:
    """A private copy of a run (exports write into the run folder)."""
    target = into / "runs" / run.name
    shutil.copytree(run, target, symlinks=True)
    return target


def set_status(run: Path, status: str) -> None:
    record = json.loads((run / "status.json").read_text())
    record["status"] = status
    (run / "status.json").write_text(json.dumps(record))


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}
