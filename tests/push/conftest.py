"""A tiny trained, merged and evaluated run, made once for the push tests; and the CLI run in-process."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import run_persona
from tests.train.conftest import tiny_dataset, tiny_model, write_config  # noqa: F401 - shared session fixtures

# Planted in the environment of every test that has a token; no file or output may ever contain it.
FAKE_TOKEN = "hf_PLANTEDfakeTOKEN0123456789abcdefXYZ"


@pytest.fixture(scope="session")
def pushed_run(tmp_path_factory, tiny_model, tiny_dataset) -> Path:  # noqa: F811
    """Trained through the real CLI (2 steps), merged, evaluated on 2 samples; a baseline metrics.json beside it."""
    import torch

    from personaforge.evaluate.runner import evaluate_run
    from personaforge.merge import merge_run
    from personaforge.train.run import Run

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("pushrun")
    config = write_config(folder, tiny_model, tiny_dataset, train={"max_steps": 2, "threads": 1},
                          eval={"max_new_tokens": 4})
    result = run_persona("train", str(config))
    assert result.returncode == 0, result.stderr
    run = Run(Path(result.stdout.splitlines()[-1].removeprefix("run: ")))
    merge_run(run, log=lambda _: None)
    evaluate_run(run, baseline=False, split="eval", max_samples=2, log=lambda _: None)
    # The baseline in the shape eval writes (a real --baseline eval would cost another model load and generation).
    metrics = json.loads((run.path / "eval" / "eval" / "metrics.json").read_text())
    baseline = {**metrics, "rouge1": metrics["rouge1"] / 2, "ci": {**metrics["ci"], "rouge1": [0.01, 0.04]}}
    (run.path / "eval" / "eval-baseline").mkdir()
    (run.path / "eval" / "eval-baseline" / "metrics.json").write_text(json.dumps(baseline))
    return run.path


@pytest.fixture
def run_copy(pushed_run, tmp_path) -> Path:
    """A private copy of the run for tests that change it (its own runs folder, same name)."""
    dest = tmp_path / "runs" / pushed_run.name
    shutil.copytree(pushed_run, dest, ignore=shutil.ignore_patterns("push", "checkpoints", "logs"))
    return dest


def with_consent(run: Path, consent: str = "Agreed in writing, 2026-01-05.", source: str = "Interview, 2025") -> None:
    data = json.loads((run / "personas.json").read_text())
    for persona in data["personas"]:
        persona["consent"], persona["source"] = consent, source
    (run / "personas.json").write_text(json.dumps(data))


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch, capsys, tmp_path):
    """`persona ...` in this process (so huggingface_hub can be patched), through the real `main()`.

    No token unless the test passes one: HF_TOKEN unset and the stored-login file pointed at nothing.
    """
    from huggingface_hub import constants

    from personaforge.cli import main

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-stored-token"))

    def invoke(*args: str, token: str | None = None) -> Result:
        if token is not None:
            monkeypatch.setenv("HF_TOKEN", token)
        monkeypatch.setattr(sys, "argv", ["persona", *args])
        with pytest.raises(SystemExit) as exit_info:
            main()
        captured = capsys.readouterr()
        return Result(exit_info.value.code or 0, captured.out, captured.err)

    return invoke


def files_under(*folders: Path) -> dict[str, bytes]:
    """Every file below the folders, by path, with its bytes."""
    found = {}
    for folder in folders:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and not path.is_symlink():
                found[str(path)] = path.read_bytes()
    return found
