"""The HF token and teacher API keys never reach what the tool writes or prints: plant them, run the stages, and
search every byte of the outputs (run folder with TensorBoard events, dataset, teacher cache, reports) and all of
stdout/stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import CARDS, run_persona
from tests.dataset.test_teacher import FakeTeacher
from tests.reliability.conftest import run_in_process
from tests.train.conftest import write_config

HF_TOKEN = "hf_PLANTEDhfTokenNeverWrite0123456789"
TEACHER_KEY = "sk-PLANTEDteacherKeyNeverWrite0123456789"
# Shaped like no known credential and in no environment variable: only the targeted redaction can catch it.
PLAIN_SECRET = "PLANTED-plain-secret-4711"
SECRET_ENV = {"HF_TOKEN": HF_TOKEN, "HUGGING_FACE_HUB_TOKEN": HF_TOKEN, "PERSONAFORGE_TEACHER_API_KEY": TEACHER_KEY,
              "HF_HUB_OFFLINE": "1"}
SECRETS = (HF_TOKEN, TEACHER_KEY, PLAIN_SECRET)


def files_holding_secrets(*roots: Path) -> list[str]:
    """Every file under ``roots`` whose bytes contain a planted secret (binary files such as tfevents included)."""
    found = []
    for root in roots:
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                data = path.read_bytes()
                found += [f"{path}: {secret}" for secret in SECRETS if secret.encode() in data]
    return found


def assert_no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text[-2000:])


def test_teacher_key_stays_out_of_dataset_cache_and_output(tmp_path, project):
    teacher = FakeTeacher()
    try:
        config = tmp_path / "data.yaml"
        config.write_text(yaml.safe_dump({
            "transcripts": [str(project.transcripts)], "personas": [str(project.cards)], "out": str(tmp_path / "ds"),
            "eval_fraction": 0.2,
            "teacher": {"url": teacher.url, "model": "fake", "cache_dir": str(tmp_path / "cache")}}))
        result = run_persona("data", "build", str(config), env=SECRET_ENV)
        assert result.returncode == 0, result.stderr
        # the key was really in play: it went to the teacher, and only there
        assert teacher.headers and all(h.get("Authorization") == f"Bearer {TEACHER_KEY}" for h in teacher.headers)
    finally:
        teacher.close()
    assert_no_secret_in(result.stdout, result.stderr)
    assert files_holding_secrets(tmp_path / "ds", tmp_path / "cache", config) == []

    # The same build with the key in the URL's query string (some servers take ?key=...): answered from the cache
    # (its key ignores the URL), so the dataset card is written — and must not carry the key.
    again = run_persona("data", "build", str(config), "--out", str(tmp_path / "ds2"), "--set",
                        f"teacher.url=http://127.0.0.1:9/v1?api_key={PLAIN_SECRET}", env=SECRET_ENV)
    assert again.returncode == 0, again.stderr
    assert "api_key=<redacted>" in (tmp_path / "ds2" / "dataset_card.json").read_text()
    assert_no_secret_in(again.stdout, again.stderr)
    assert files_holding_secrets(tmp_path / "ds2", tmp_path / "cache") == []


def test_hf_token_stays_out_of_the_run_folder_logs_and_reports(tmp_path, tiny_model, tiny_dataset):
    config = write_config(tmp_path, tiny_model, tiny_dataset, train={"max_steps": 2}, eval={"max_new_tokens": 4})
    result = run_persona("run", str(config), "--max-samples", "2", "--no-baseline", env=SECRET_ENV)
    assert result.returncode == 0, result.stderr
    run = Path(result.stdout.strip().splitlines()[-1].removeprefix("run: "))
    written = {p.relative_to(run).as_posix() for p in run.rglob("*")}
    # what was searched: the config snapshot, env, logs with TensorBoard events, merged model, eval report
    assert {"config.yaml", "env.json", "merged/model.safetensors", "eval/eval/report.md"} <= written
    assert any(name.startswith("logs/events.out.tfevents") for name in written)
    assert (tmp_path / "leaderboard" / "report.html").exists()
    assert_no_secret_in(result.stdout, result.stderr)
    assert files_holding_secrets(tmp_path) == []


DATA = "transcripts: [{t}]\npersonas: [{cards}]\nout: {out}\n"


@pytest.mark.parametrize("how,args", [
    ("key in the URL of a teacher that is down", ["--set", f"teacher.url=http://127.0.0.1:9/v1?key={PLAIN_SECRET}",
                                                  "--set", "teacher.model=m", "--set", "teacher.retries=0"]),
    ("key pasted where its variable name goes", ["--set", "teacher.url=http://127.0.0.1:9/v1", "--set",
                                                 "teacher.model=m", "--set", f"teacher.api_key_env={PLAIN_SECRET}"]),
    ("key as an unknown config key", ["--set", f"teacher.api_key={PLAIN_SECRET}"]),
    ("token-shaped value in an override", ["--set", f"seed={HF_TOKEN}"]),
])
def test_secrets_stay_out_of_error_messages(tmp_path, how, args, monkeypatch, capfd):
    (tmp_path / "cards.yaml").write_text(CARDS, encoding="utf-8")
    (tmp_path / "t.txt").write_text("Ada\tThe lamp turns every ten seconds and I count each one.\n", encoding="utf-8")
    config = tmp_path / "data.yaml"
    config.write_text(DATA.format(t=tmp_path / "t.txt", cards=tmp_path / "cards.yaml", out=tmp_path / "out"))
    result = run_in_process(["data", "build", str(config), *args], tmp_path, monkeypatch, capfd)
    assert result.returncode == 2 and "error: " in result.stderr, (how, result.stderr)
    assert_no_secret_in(result.stdout, result.stderr)
    assert not (tmp_path / "out").exists()


def test_a_secret_in_the_environment_is_scrubbed_from_any_error(monkeypatch):
    from personaforge.errors import PersonaForgeError

    monkeypatch.setenv("SOME_SERVICE_API_KEY", PLAIN_SECRET)
    message = str(PersonaForgeError(f"model '{PLAIN_SECRET}' not found"))
    assert PLAIN_SECRET not in message and "<redacted>" in message
