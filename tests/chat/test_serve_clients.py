"""persona serve through the official openai client; concurrent requests batched with answers identical to
one-at-a-time; the security rules (API key, Host, body size) and a client that leaves mid-stream."""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from personaforge.prompting import Exchange
from personaforge.serve import MAX_BODY
from personaforge.serving.batcher import Batcher, Job
from tests.chat.conftest import Server

QUESTIONS = ["What about storms?", "Do you like the lamp?", "Tell me about your father.",
             "What is winter like?", "Who visits the island?", "What do gulls do?"]


def client(server, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=120)


def ask(c: openai.OpenAI, question: str, **extra) -> str:
    result = c.chat.completions.create(model="ada-bell", messages=[{"role": "user", "content": question}], **extra)
    return result.choices[0].message.content


def test_the_openai_client_gets_answers_streams_and_a_not_found(server, session):
    c = client(server)
    assert [m.id for m in c.models.list().data] == ["ada-bell", "ben-ortiz"]
    result = c.chat.completions.create(
        model="Ada", messages=[{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "The lamp turns."},
                               {"role": "user", "content": "What about storms?"}])
    turn = session.prepare(session.persona("Ada Bell"), "What about storms?", [Exchange("Hello?", "The lamp turns.")])
    assert result.choices[0].message.content == session.reply(turn).collect()  # as chat answers it, one at a time
    assert result.model == "ada-bell" and result.usage.prompt_tokens == len(turn.prompt_ids)
    stream = c.chat.completions.create(model="ada-bell", messages=[{"role": "user", "content": "What about storms?"}],
                                       stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == ask(c, "What about storms?")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    with pytest.raises(openai.NotFoundError) as raised:
        ask_model = c.chat.completions.create
        ask_model(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model="ada-bell", messages=[{"role": "user", "content": "Hi"}], temperature=-1)


def test_concurrent_requests_get_the_answers_they_get_one_at_a_time(server):
    c = client(server)
    alone = [ask(c, q) for q in QUESTIONS]
    before = len(server.batcher.batches)
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        together = list(pool.map(lambda q: ask(c, q), QUESTIONS))
    assert together == alone
    assert sum(server.batcher.batches[before:]) == len(QUESTIONS)


def test_requests_waiting_together_decode_as_one_batch_each_to_its_own_length(session):
    """Queued while the batcher is held, six requests go as one batch; greedy answers match one-at-a-time."""
    batcher = Batcher(session, max_batch=16, gather_s=0)
    try:
        def job(question: str, max_tokens: int) -> tuple[Job, threading.Event]:
            turn = session.prepare(session.persona("Ada Bell"), question)
            done = threading.Event()
            settings = session.with_settings(max_new_tokens=max_tokens)
            return Job(turn.prompt_ids, settings, [], lambda kind, value: done.set() if kind == "done" else None), done

        def run(jobs):
            with batcher.ready:  # the batcher's loop waits for this lock: everything is queued before it looks
                for j, _ in jobs:
                    batcher.submit(j)
            for _, done in jobs:
                assert done.wait(300)
            return [(j.text, j.completion_tokens, j.finish_reason) for j, _ in jobs]

        sizes = [8, 3, 8, 1, 6, 8]
        alone = [run([job(q, n)])[0] for q, n in zip(QUESTIONS, sizes)]
        assert batcher.batches == [1] * 6
        together = run([job(q, n) for q, n in zip(QUESTIONS, sizes)])
        assert batcher.batches[-1] == 6 and together == alone
        assert all(tokens <= n for (_, tokens, _), n in zip(together, sizes))
        # a request whose client left before its batch began is never decoded
        gone, _ = job(QUESTIONS[0], 8)
        gone.cancel.set()
        kept = job(QUESTIONS[1], 8)
        assert run([kept])  # (queued alone after the cancelled one)
        with batcher.ready:
            batcher.submit(gone)
        kept2 = job(QUESTIONS[2], 8)
        run([kept2])
        assert gone not in batcher.finished and gone.completion_tokens == 0
    finally:
        batcher.close()


def test_a_client_that_leaves_mid_stream_frees_its_row(server):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    body = json.dumps({"model": "ada-bell", "messages": [{"role": "user", "content": "Tell me everything."}],
                       "max_tokens": 200, "stream": True})
    connection.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    assert response.status == 200
    while b'"content": ""' in (line := response.readline()) or not line.strip():
        pass  # the role chunk: decoding has not produced text yet
    assert line.startswith(b"data: ") and b'"content"' in line  # the first words are out
    connection.sock.close()  # the client leaves
    connection.close()
    deadline = time.monotonic() + 120
    while not [j for j in server.batcher.finished if j.settings.max_new_tokens == 200]:
        assert time.monotonic() < deadline, "the batch never ended"
        time.sleep(0.1)
    job = next(j for j in server.batcher.finished if j.settings.max_new_tokens == 200)
    assert job.cancel.is_set() and 0 < job.completion_tokens < 200  # its row ended early
    assert ask(client(server), "Still there?")  # and the server goes on answering


def raw(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.request(method, path, body, {"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data else None


def test_security_rules_are_the_studios(server, session):
    # loopback: a foreign Host header (DNS rebinding) and a cross-origin browser POST are refused
    status, body = raw(server, "GET", "/v1/models", headers={"Host": "evil.example"})
    assert status == 403 and body["error"]["type"] == "permission_error"
    request = json.dumps({"model": "ada-bell", "messages": [{"role": "user", "content": "Hi"}]}).encode()
    assert raw(server, "POST", "/v1/chat/completions", request, {"Origin": "http://evil.example"})[0] == 403
    # request size: refused from Content-Length, and while reading a body sent without one
    big = json.dumps({"model": "ada-bell", "messages": [{"role": "user", "content": "x" * MAX_BODY}]}).encode()
    status, body = raw(server, "POST", "/v1/chat/completions", big)
    assert status == 413 and "too large" in body["error"]["message"]
    assert raw(server, "GET", "/v1/chat/completions")[0] == 405
    assert raw(server, "GET", "/nope")[1]["error"]["code"] == "unknown_url"
    # off loopback (or with --api-key): the key is required, as the openai client sends it
    with Server(session, host="192.0.2.1") as remote:
        with pytest.raises(openai.PermissionDeniedError):
            client(remote, "wrong-key").models.list()
        assert [m.id for m in client(remote, remote.security.token).models.list().data] == ["ada-bell", "ben-ortiz"]
    with Server(session, api_key="s3cret-key-1") as keyed:
        with pytest.raises(openai.PermissionDeniedError):
            client(keyed).models.list()
        assert ask(client(keyed, "s3cret-key-1"), "Hi?") is not None


def test_serve_flags_are_checked_before_anything_loads(chat_run):
    from tests.conftest import assert_user_error, run_persona

    assert_user_error(run_persona("serve", str(chat_run), "--max-batch", "0"), "--max-batch")
    assert_user_error(run_persona("serve", str(chat_run), "--api-key", "short"), "--api-key")
