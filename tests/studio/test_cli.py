"""`persona studio` and `persona data review-status` as users run them: the ready line, the token off loopback,
one-line errors, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager

from personaforge.dataset.review import ReviewLog
from tests.conftest import REPO, assert_user_error, run_persona
from tests.studio.conftest import http

ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200"}


@contextmanager
def studio_process(*args: str):
    """`persona studio ARGS` in a child process; yields (url, process) once it printed its ready line."""
    process = subprocess.Popen([sys.executable, "-m", "personaforge", "studio", *args], cwd=REPO, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    timer = threading.Timer(120, process.kill)
    timer.start()
    try:
        line = process.stdout.readline()
        assert line.startswith("studio on http://"), (line, process.stderr.read() if process.poll() is not None else "")
        yield line.strip().removeprefix("studio on "), process
    finally:
        timer.cancel()
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        process.stderr.close()


def test_studio_prints_its_address_when_ready_and_stops_on_ctrl_c(dataset):
    with studio_process("--data", str(dataset.folder), "--port", "0") as (url, process):
        assert url.startswith("http://127.0.0.1:") and url.endswith("/") and "token" not in url
        reply = http("GET", url + "api/records")
        assert reply.status == 200 and reply.json()["total"] == len(dataset.records)
        assert http("POST", url + "api/records/extracted%3Atalk-L2/decision", {"action": "accept"}).status == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(20) == 0
        err = process.stderr.read()
    assert "Traceback" not in err and "studio stopped" in err
    assert str(dataset.review.name) in err  # says where the decisions go
    assert [d["action"] for d in dataset.decisions()] == ["accept"]


def test_off_loopback_the_url_carries_a_token_and_requests_without_it_get_403(dataset):
    with studio_process("--data", str(dataset.folder), "--host", "0.0.0.0", "--port", "0") as (url, _):
        assert url.startswith("http://0.0.0.0:") and "/?token=" in url
        port = url.split(":")[2].split("/")[0]
        token = url.split("token=")[1]
        assert http("GET", f"http://127.0.0.1:{port}/api/records").status == 403
        assert http("GET", f"http://127.0.0.1:{port}/").status == 403
        assert http("GET", f"http://127.0.0.1:{port}/api/records?token={token}").status == 200


def test_user_errors_are_one_line_before_anything_listens(dataset, tmp_path):
    assert_user_error(run_persona("studio", "--data", str(tmp_path / "missing")), "no dataset folder", "build it")
    old = tmp_path / "old"
    old.mkdir()
    (old / "train.jsonl").write_text("", encoding="utf-8")
    assert_user_error(run_persona("studio", "--data", str(old)), "candidates.jsonl", "rebuild")
    assert_user_error(run_persona("studio", "configs/data/default.yaml", "--data", str(dataset.folder)), "not both")
    assert_user_error(run_persona("studio", "--data", str(dataset.folder), "--port", "70000"), "--port 70000")
    assert_user_error(run_persona("studio", "--data", str(dataset.folder), "--review-file",
                                  str(dataset.folder / "inside.jsonl")), "outside the dataset folder")
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = str(busy.getsockname()[1])
        assert_user_error(run_persona("studio", "--data", str(dataset.folder), "--port", port), "in use", "--port")
    finally:
        busy.close()
    assert_user_error(run_persona("data", "review-status", "--data", str(tmp_path / "missing")), "no dataset folder")


def test_review_status_prints_progress_and_each_stale_decision(dataset):
    log = ReviewLog.load(dataset.review)
    log.decide(dataset.record("extracted:talk-L4"), "accept")
    log.decide(dataset.record("extracted:talk-L6"), "edit", answer="I light the oven at three.")
    changed = dataset.record("extracted:talk-L2")
    older = {**changed, "messages": [*changed["messages"][:-1], {"role": "assistant", "content": "An older answer."}]}
    log.decide(older, "reject", reason="cut mid-story")
    with dataset.review.open("a", encoding="utf-8") as handle:
        handle.write('{"n": "torn", "id": "ext')
    result = run_persona("data", "review-status", "--data", str(dataset.folder))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Ada Bell" in out and "Ben Ortiz" in out and "reviewed 2 of 6; 1 stale, 0 orphaned" in out
    assert "stale: extracted:talk-L2: rejected" in out
    assert "old answer: An older answer." in out and "new answer: The lamp turns every ten seconds" in out
    assert "the last line is cut off" in result.stderr and "Traceback" not in result.stderr
