"""Fixtures for training tests: a tiny random Llama and a small built dataset, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from personaforge.config import DataConfig
from personaforge.dataset.build import build_dataset
from tests.conftest import ADA, BEN, CARDS, tab_transcript
from tests.tiny import make_tiny_model


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tinydata")
    (root / "cards.yaml").write_text(CARDS, encoding="utf-8")
    (root / "t").mkdir()
    (root / "t" / "one.txt").write_text(tab_transcript(ADA, BEN), encoding="utf-8")
    config = DataConfig(transcripts=[str(root / "t")], personas=[str(root / "cards.yaml")], out=str(root / "data"),
                        eval_fraction=0.2)
    build_dataset(config)
    return root / "data"


def write_config(folder: Path, model_dir: Path, data_dir: Path, **sections) -> Path:
    """A training config for the tiny model; ``sections`` override keys, e.g. train={'max_steps': 4}."""
    config = {
        "model": {"name": str(model_dir)},
        "data": {"path": str(data_dir), "max_length": 256, "validation_fraction": 0.0},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "train": {"epochs": 1, "batch_size": 4, "lr": 1e-3, "seed": 0, "logging_steps": 1, "threads": 1},
        "output": {"dir": str(folder / "runs")},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "train.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
