"""persona serve: the OpenAI-compatible API on loopback, through a real HTTP client (urllib); the official openai
client, concurrency and security are in test_serve_clients.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from personaforge.generate import cut_at_stop
from personaforge.prompting import Exchange
from personaforge.serve import ApiError, PersonaAPI, conversation_parts
from tests.chat.conftest import ONE_THREAD, Server
from tests.conftest import REPO


def call(url: str, body: object | None = None, raw: bytes | None = None) -> tuple[int, str, bytes]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


MESSAGES = [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": "The lamp turns."},
            {"role": "user", "content": "What about storms?"}]


def test_models_lists_one_model_per_persona_and_says_what_it_is(server):
    status, kind, body = call(server.url + "/v1/models")
    assert (status, kind.split(";")[0]) == (200, "application/json")
    data = json.loads(body)["data"]
    assert [(m["id"], m["name"], m["object"]) for m in data] == [("ada-bell", "Ada Bell", "model"),
                                                                  ("ben-ortiz", "Ben Ortiz", "model")]
    assert all("AI model imitating" in m["description"] and "not them" in m["description"] for m in data)
    assert json.loads(call(server.url + "/v1/models/ben-ortiz")[2])["name"] == "Ben Ortiz"


def test_completion_answers_in_the_training_format(server, session):
    status, _, body = call(server.url + "/v1/chat/completions", {"model": "Ada", "messages": MESSAGES})
    assert status == 200, body
    result = json.loads(body)
    turn = session.prepare(session.persona("Ada Bell"), "What about storms?", [Exchange("Hello?", "The lamp turns.")])
    expected = session.reply(turn).collect()
    assert result["object"] == "chat.completion" and result["model"] == "ada-bell"
    choice = result["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": expected}
    assert choice["finish_reason"] in ("stop", "length")
    assert result["usage"]["prompt_tokens"] == len(turn.prompt_ids)
    assert result["usage"]["total_tokens"] == len(turn.prompt_ids) + result["usage"]["completion_tokens"] > len(turn.prompt_ids)


def test_streaming_sends_chunks_that_add_up_to_the_answer_then_done(server):
    body = {"model": "ada-bell", "messages": MESSAGES}
    plain = json.loads(call(server.url + "/v1/chat/completions", body)[2])["choices"][0]
    status, kind, raw = call(server.url + "/v1/chat/completions", {**body, "stream": True})
    assert (status, kind.split(";")[0]) == (200, "text/event-stream")
    events = [line.removeprefix("data: ") for line in raw.decode().split("\n\n") if line]
    assert events[-1] == "[DONE]" and all(line.startswith("data: ") for line in raw.decode().split("\n\n") if line)
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == plain["message"]["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == plain["finish_reason"]
    assert len({c["id"] for c in chunks}) == 1


def test_stop_and_max_tokens_are_honoured(server):
    body = {"model": "ada-bell", "messages": MESSAGES, "max_tokens": 8}
    full = json.loads(call(server.url + "/v1/chat/completions", body)[2])["choices"][0]["message"]["content"]
    assert len(full) >= 6, full
    stop = full[3:5]
    cut = json.loads(call(server.url + "/v1/chat/completions", {**body, "stop": [stop]})[2])["choices"][0]
    assert cut["message"]["content"] == cut_at_stop(full, [stop]) and cut["finish_reason"] == "stop"
    short = json.loads(call(server.url + "/v1/chat/completions", {**body, "max_tokens": 1})[2])
    assert short["usage"]["completion_tokens"] == 1 and short["choices"][0]["finish_reason"] in ("length", "stop")


def test_unknown_model_is_a_404_with_an_openai_error_body(server):
    status, kind, body = call(server.url + "/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES})
    assert (status, kind.split(";")[0]) == (404, "application/json")
    error = json.loads(body)["error"]
    assert error["code"] == "model_not_found" and error["type"] == "invalid_request_error"
    assert "gpt-4o" in error["message"] and "ada-bell, ben-ortiz" in error["message"]
    assert call(server.url + "/v1/models/nobody")[0] == 404


@pytest.mark.parametrize("raw, needle", [
    (b"{not json", "not valid JSON"),
    (json.dumps({"model": "ada-bell"}).encode(), "'messages'"),
    (json.dumps({"model": "ada-bell", "messages": [{"role": "assistant", "content": "hi"}]}).encode(), "user"),
    (json.dumps({"model": "ada-bell", "messages": MESSAGES, "temperature": -1}).encode(), "'temperature'"),
    (json.dumps({"model": "ada-bell", "messages": MESSAGES, "n": 3}).encode(), "n = 1"),
    (json.dumps({"model": "ada-bell", "messages": MESSAGES, "repetition_penalty": 0.5}).encode(), "repetition_penalty"),
])
def test_bad_requests_are_400s(server, raw, needle):
    status, _, body = call(server.url + "/v1/chat/completions", raw=raw)
    assert status == 400, body
    assert needle in json.loads(body)["error"]["message"]


def test_messages_map_onto_system_history_and_question():
    system, history, question = conversation_parts([
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "A?"},
        {"role": "assistant", "content": [{"type": "text", "text": "B."}]},
        {"role": "user", "content": "C?"}, {"role": "user", "content": "D?"}])
    assert (system, history, question) == ("Be brief.", [Exchange("A?", "B.")], "C?\n\nD?")
    assert conversation_parts([{"role": "user", "content": "Hi"}]) == (None, [], "Hi")
    with pytest.raises(ApiError, match="system message must come before"):
        conversation_parts([{"role": "user", "content": "A"}, {"role": "system", "content": "S"},
                            {"role": "user", "content": "B"}])


def test_a_client_system_message_replaces_the_persona_prompt(session):
    api = PersonaAPI(session)
    turn = api.prepare({"model": "ben", "messages": [{"role": "user", "content": "Bread?"}]}).turn
    assert turn.conversation.system == session.persona("Ben Ortiz").system_prompt
    turn = api.prepare({"model": "ben", "messages": [{"role": "system", "content": "Talk like a pirate."},
                                                     {"role": "user", "content": "Bread?"}]}).turn
    assert turn.conversation.system == "Talk like a pirate." and turn.conversation.name == "Ben Ortiz"


def test_serve_command_prints_its_address_and_answers(chat_run):
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200", **ONE_THREAD}
    process = subprocess.Popen([sys.executable, "-m", "personaforge", "serve", str(chat_run), "--port", "0"],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("serving on http://127.0.0.1:"), (line, process.stderr.read() if process.poll() else "")
        url = line.removeprefix("serving on ")
        status, _, body = call(url + "/v1/chat/completions",
                               {"model": "Ben Ortiz", "messages": [{"role": "user", "content": "Bread?"}]})
        assert status == 200 and json.loads(body)["choices"][0]["message"]["role"] == "assistant"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "imitate real people (Ada Bell, Ben Ortiz)" in stderr and "they are not them" in stderr
