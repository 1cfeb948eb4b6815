"""The original pipeline's files, written in its formats (tests/original/fixtures): train configs with every key its
configs use, its data folder (batch_1..3.jsonl, prompt/completion only, plus eval/eval.jsonl with one planted
near-copy of a training answer) and one eval config of each kind (transformers, GGUF through llama.cpp).

Tests work on a copy, from inside it, because the configs use the original's relative paths (./data, ./outputs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
PERSONAS = ["Lena Bose", "Mira Sen", "Omar Qadir"]
TRAIN_CONFIG = "configs/train_llama31_8b_instruct.yaml"
QLORA_CONFIG = "configs/train_qwen3_32b_instruct.yaml"
EVAL_CONFIG = "configs/eval_llama31_8b_instruct.yaml"
GGUF_EVAL_CONFIG = "configs/eval_llama31_8b_instruct_gguf.yaml"
# The planted leak: eval/eval.jsonl line 4 repeats most of batch_1.jsonl line 1 (17 words in a row).
LEAK = ("data/eval/eval.jsonl:4", "data/batch_1.jsonl:1", 17)


@pytest.fixture
def original(tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the original's project folder, made the working directory."""
    root = tmp_path / "original"
    shutil.copytree(FIXTURES, root)
    monkeypatch.chdir(root)
    return root


from tests.train.conftest import tiny_model  # noqa: E402,F401 - the shared session fixture
