"""Fixtures for the reliability tests: the shared tiny model and dataset, a pickle-only copy of the model, and a
way to run the CLI in this process (the same `main()` users run, without paying for a fresh interpreter)."""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.train.conftest import tiny_dataset, tiny_model  # noqa: F401 - shared session fixtures


def make_pickle_model(source: Path, dest: Path) -> Path:
    """A copy of a model folder whose weights are pytorch_model.bin (pickle) instead of model.safetensors."""
    import torch
    from safetensors.torch import load_file

    shutil.copytree(source, dest)
    torch.save(load_file(dest / "model.safetensors"), dest / "pytorch_model.bin")
    (dest / "model.safetensors").unlink()
    return dest


@pytest.fixture(scope="session")
def pickle_model(tmp_path_factory, tiny_model) -> Path:  # noqa: F811 - the imported fixture
    return make_pickle_model(tiny_model, tmp_path_factory.mktemp("pickle") / "model")


@dataclass
class Result:
    """What a finished command left: the shape of subprocess.CompletedProcess, for assert_user_error."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(args: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd) -> Result:
    """`persona ARGS` through personaforge.cli.main in this process; an exception main() lets through fails here."""
    from personaforge import cli

    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["persona", *args])
    capfd.readouterr()
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    else:  # pragma: no cover - main() always exits
        code = 0
    out, err = capfd.readouterr()
    return Result(code, out, err)


def snapshot(root: Path) -> dict[str, str]:
    """Every path under root with the sha256 of its bytes (links: their target), to prove nothing changed."""
    state: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            state[key] = "link:" + str(path.readlink())
        elif path.is_dir():
            state[key] = "dir"
        else:
            state[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state
