"""The teacher path over real HTTP: a small OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from personaforge.config import DataConfig, TeacherConfig
from personaforge.dataset.build import OUTPUT_FILES, build_dataset
from personaforge.dataset.writers import clean_response, text_problem
from personaforge.errors import PersonaForgeError
from tests.conftest import assert_user_error, run_persona


BAD_RESPONSES = [
    "I'm sorry, but I can't help with that request?",     # a refusal
    "Ada Bell: what about the lamp?",                     # a speaker label
    "",                                                   # nothing
    "The lamp is a bright thing on the island.",          # not a question
    "What is the capital of France and why?",             # a question the passage does not answer
    "COPY",                                               # the passage itself, with a question mark
]


def good_response(user: str) -> str:
    """What a sensible teacher writes: a rephrasing, or a question about the passage it was given."""
    if user.startswith("Rephrase"):
        original = user.rsplit("\n\n", 1)[-1].strip()
        return "Tell me, " + original[:1].lower() + original[1:]
    passage = user.split("\n\n")[1] if "Passage:" not in user else user.split("Passage:\n", 1)[1]
    return "What can you tell me about " + " ".join(passage.split()[:5]).rstrip(",.") + "?"


class FakeTeacher:
    """An OpenAI-compatible server on 127.0.0.1: sensible questions (``good``) or only bad output (``bad``)."""

    def __init__(self, fail_first: int = 0, mode: str = "good") -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.fail_first = fail_first
        self.mode = mode
        teacher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                teacher.requests.append(body)
                teacher.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    self.send_response(404)
                    self.end_headers()
                    return
                if len(teacher.requests) <= teacher.fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                user = body["messages"][-1]["content"]
                if teacher.mode == "bad":
                    content = BAD_RESPONSES[len(teacher.requests) % len(BAD_RESPONSES)]
                    if content == "COPY":
                        content = " ".join(user.split("\n\n")[-1].split()[:12]).rstrip(".") + "?"
                else:
                    content = good_response(user)
                payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def teacher():
    server = FakeTeacher()
    yield server
    server.close()


def _config(project, url: str, **teacher) -> DataConfig:
    (project.transcripts / "solo.txt").write_text(
        "Ada\tI never planned to keep a light. I studied accounting in the city and hated every ledger. Then my"
        " uncle fell ill and somebody had to climb the tower, so I came for a summer. That was twenty-two years"
        " ago. The island decided for me, the way weather decides for fishermen.\n", encoding="utf-8")
    return DataConfig(transcripts=[str(project.transcripts)], personas=[str(project.cards)],
                      out=str(project.root / "out"), eval_fraction=0.2,
                      teacher=TeacherConfig(url=url, model="fake-model", cache_dir=str(project.root / "cache"), **teacher))


def test_teacher_writes_questions_that_pass_the_checks(project, teacher, monkeypatch):
    monkeypatch.setenv("PERSONAFORGE_TEACHER_API_KEY", "sk-planted-secret-123")
    config = _config(project, teacher.url)
    result = build_dataset(config)
    generators = {(r["type"], r["generator"]) for r in result.train + result.eval}
    for record_type in ("transformed", "hypothetical"):
        assert (record_type, "teacher:fake-model") in generators
    # the monologue nobody asked about gets the teacher's question for it
    monologue = next(r for r in result.train + result.eval if r["segment"].startswith("solo-"))
    assert monologue["generator"] == "teacher:fake-model"
    assert "What can you tell me about" in monologue["prompt"]
    assert all(h.get("Authorization") == "Bearer sk-planted-secret-123" for h in teacher.headers)
    assert all(r["temperature"] == 0 and r["model"] == "fake-model" for r in teacher.requests)
    written = b"".join((project.root / "out" / name).read_bytes() for name in OUTPUT_FILES)
    assert b"sk-planted-secret-123" not in written
    # Answers stay the persona's own words, whatever the teacher writes: the teacher only asks.
    spoken = " ".join((project.transcripts / name).read_text() for name in ("one.txt", "solo.txt"))
    for record in result.train + result.eval:
        if record["type"] != "negative":
            assert " ".join(record["completion"].split()) in " ".join(spoken.split()), record["id"]
    report = result.card["quality"]["teacher"]
    assert report["asked"] == report["accepted"] + sum(report["fell_back"].values()) and report["accepted"] > 0


def test_bad_teacher_output_never_reaches_a_record(project):
    server = FakeTeacher(mode="bad")
    try:
        result = build_dataset(_config(project, server.url), write=True)
    finally:
        server.close()
    rows = result.train + result.eval
    assert not [r["id"] for r in rows if r["generator"].startswith("teacher:")]
    text = json.dumps(rows)
    for bad in BAD_RESPONSES:
        if bad and bad != "COPY":
            assert bad not in text
    report = result.card["quality"]["teacher"]
    assert report["accepted"] == 0 and report["asked"] == sum(report["fell_back"].values()) > 0
    assert {"refusal", "label or timestamp", "empty", "not a question", "does not fit the answer",
            "copied the prompt"} \
        <= set(report["fell_back"]), report
    # every fallback is counted in the card and named in a warning
    assert any(w.startswith("teacher: ") and "failed the checks" in w for w in result.card["warnings"])
    markdown = (project.root / "out" / "dataset_card.md").read_text()
    assert "Teacher (fake-model)" in markdown and "passed the checks" in markdown


def test_cached_responses_make_rebuilds_offline_and_identical(project, teacher):
    config = _config(project, teacher.url)
    build_dataset(config)
    first = {name: (project.root / "out" / name).read_bytes() for name in OUTPUT_FILES}
    asked = len(teacher.requests)
    assert asked > 0
    teacher.close()  # the server is gone: everything must come from the cache
    build_dataset(config)
    assert {name: (project.root / "out" / name).read_bytes() for name in OUTPUT_FILES} == first


def test_transient_failures_are_retried(project):
    server = FakeTeacher(fail_first=2)
    try:
        result = build_dataset(_config(project, server.url, retries=3), write=False)
        assert any(r["generator"] == "teacher:fake-model" for r in result.train)
        assert len(server.requests) > 2
    finally:
        server.close()


def test_unreachable_teacher_is_a_clear_error(project):
    server = FakeTeacher()
    url = server.url
    server.close()
    with pytest.raises(PersonaForgeError, match=r"failed after 2 tries.*build without --teacher-url"):
        build_dataset(_config(project, url, retries=1, timeout=2), write=False)
    assert not (project.root / "out").exists()


def test_cli_teacher_flags(project, teacher):
    result = run_persona(*project.build_args("ds", "--teacher-url", teacher.url, "--teacher-model", "fake-model"),
                         env={"PERSONAFORGE_HOME": str(project.root / "home")})
    assert result.returncode == 0, result.stderr
    assert (project.root / "home" / "teacher-cache").is_dir()
    rows = [json.loads(line) for line in (project.root / "ds" / "train.jsonl").read_text().splitlines()]
    assert any(r["generator"] == "teacher:fake-model" for r in rows)
    wrong = run_persona(*project.build_args("ds2", "--teacher-url", teacher.url.replace("/v1", "/nope/v1"),
                                            "--teacher-model", "fake-model"),
                        env={"PERSONAFORGE_HOME": str(project.root / "home2")})
    assert_user_error(wrong, "404")


# What SmolLM2-135M-Instruct answered through llama.cpp's server (tests/dataset/test_teacher_llama.py, and a
# teacher build of the bundled samples): each ends in a question mark, so only the other checks can stop it.
@pytest.mark.parametrize(("response", "original", "reason"), [
    ('The interviewer asks: "What do you think about the importance of bees in agriculture?',
     "", "label or timestamp"),
    ("What a beautiful way to describe the music. The interviewer asks: \"In a band we called it the comping and"
     " the solo, what's your take on the rhythm?", "", "not one question"),
    ("I'm sorry for your loss, but I can't turn back the clock. Can you please tell me what's going on?",
     "Can I turn that around, Tomas? Do you keep written records? Over years, I mean?", "refusal"),
    ("The same question. Tell me, what does patience look like underwater?",
     "What does patience look like underwater?", "not one question"),
    ("Mira: what did the ice do to the ship?", "", "label or timestamp"),
])
def test_real_small_model_responses_are_turned_down(response, original, reason):
    assert text_problem(clean_response(response), original) == reason


@pytest.mark.parametrize(("response", "original"), [
    ("What does patience look like in your work?", ""),
    # A rephrasing keeps the lead-in its question had.
    ("Leila, the same question. How does patience look underwater?",
     "Leila, the same question. What does patience look like underwater?"),
    ("Tell me about the winter crossings.", ""),
])
def test_a_plain_question_passes_the_text_checks(response, original):
    assert text_problem(clean_response(response), original) is None
