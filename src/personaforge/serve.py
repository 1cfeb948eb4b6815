"""`persona serve`: an OpenAI-compatible HTTP API over a run's personas (standard library http.server).

    GET  /v1/models             one model per persona: id = the persona's slug, plus its display name
    GET  /v1/models/{id}
    POST /v1/chat/completions   model = a persona slug, name or alias; stream: true → server-sent events

Messages map onto the training format: user/assistant pairs become the history, the last user message is the
question. A client system message replaces the persona's training system prompt (OpenAI semantics: the client
owns the conversation); send none to get the prompt the persona was trained with. One model answers one
request at a time (a lock); other requests wait.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from personaforge.chat import ChatModel, PromptTooLong, Reply, Turn
from personaforge.errors import PersonaForgeError
from personaforge.personas import normalize_label, slugify
from personaforge.prompting import Exchange
from personaforge.run_personas import RunPersona

Log = Callable[[str], None]
MAX_BODY = 8 * 1024 * 1024
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ApiError(Exception):
    """An error answered as OpenAI does: ``{"error": {"message", "type", "code"}}`` with an HTTP status."""

    def __init__(self, status: int, message: str, code: str | None = None, kind: str = "invalid_request_error",
                 param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.kind, self.param = status, message, code, kind, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def model_description(persona: RunPersona) -> str:
    return f"AI model imitating {persona.name}, trained on their interviews; it is not them."


def find_model(personas: list[RunPersona], wanted: object) -> RunPersona:
    if not isinstance(wanted, str) or not wanted.strip():
        raise ApiError(400, "'model' is required: a persona slug, name or alias (see GET /v1/models)",
                       "missing_model", param="model")
    key = normalize_label(wanted)
    for persona in personas:
        if slugify(wanted) == persona.slug or key in {normalize_label(x) for x in (persona.name, *persona.aliases)}:
            return persona
    raise ApiError(404, f"The model '{wanted}' does not exist; this server has: "
                        f"{', '.join(p.slug for p in personas)}", "model_not_found", param="model")


# ----------------------------------------------------------------------------------------- request parsing
def _text(content: object, index: int) -> str:
    """Message content: a string, or a list of text parts (images and audio are not supported)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise ApiError(400, f"messages[{index}].content: only text parts are supported", param="messages")
            texts.append(part["text"])
        return "\n".join(texts)
    raise ApiError(400, f"messages[{index}].content must be a string or a list of text parts", param="messages")


def conversation_parts(messages: object) -> tuple[str | None, list[Exchange], str]:
    """(system or None, history, question) from OpenAI messages; consecutive same-role messages are joined."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects", param="messages")
    systems: list[str] = []
    turns: list[list[str]] = []  # [role, text]
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ApiError(400, f"messages[{index}] must be an object with role and content", param="messages")
        role = message.get("role")
        text = _text(message.get("content"), index)
        if role in ("system", "developer"):
            if turns:
                raise ApiError(400, f"messages[{index}]: a system message must come before the conversation",
                               param="messages")
            systems.append(text)
        elif role in ("user", "assistant"):
            if turns and turns[-1][0] == role:
                turns[-1][1] += "\n\n" + text
            else:
                turns.append([role, text])
        else:
            raise ApiError(400, f"messages[{index}].role '{role}' is not supported; use system, user or assistant",
                           param="messages")
    if not turns or turns[0][0] != "user" or turns[-1][0] != "user":
        raise ApiError(400, "after any system messages, messages must start and end with a user message",
                       param="messages")
    history = [Exchange(turns[i][1], turns[i + 1][1]) for i in range(0, len(turns) - 1, 2)]
    return ("\n\n".join(systems) if systems else None), history, turns[-1][1]


def _number(body: dict, name: str, kind: type, low: float, high: float | None = None) -> Any:
    value = body.get(name)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or value < low or (high is not None and value > high):
        limits = f">= {low}" if high is None else f"between {low} and {high}"
        raise ApiError(400, f"'{name}' must be a {'whole ' if kind is int else ''}number {limits}", param=name)
    return kind(value)


def _stops(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return [s for s in value if s]
    raise ApiError(400, "'stop' must be a string or a list of strings", param="stop")


# ------------------------------------------------------------------------------------------------ the API
class PersonaAPI:
    """The endpoints, independent of the HTTP plumbing."""

    def __init__(self, session: ChatModel) -> None:
        self.session = session
        self.lock = threading.Lock()  # one model: one generation at a time
        self.created = int(session.chat_run.run.path.stat().st_mtime)

    def models(self) -> dict:
        return {"object": "list", "data": [self.model_entry(p) for p in self.session.personas]}

    def model_entry(self, persona: RunPersona) -> dict:
        return {"id": persona.slug, "object": "model", "created": self.created, "owned_by": "personaforge",
                "name": persona.name, "description": model_description(persona),
                "run": self.session.chat_run.run.name}

    def model(self, model_id: str) -> dict:
        return self.model_entry(find_model(self.session.personas, model_id))

    def start(self, body: object) -> tuple[dict, Turn, Reply]:
        """Checks a chat completion request and fits its prompt; generation starts when the reply is iterated."""
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        persona = find_model(self.session.personas, body.get("model"))
        system, history, question = conversation_parts(body.get("messages"))
        if not question.strip():
            raise ApiError(400, "the last user message is empty", param="messages")
        n = _number(body, "n", int, 1)
        if n not in (None, 1):
            raise ApiError(400, "only n = 1 is supported", param="n")
        max_tokens = _number(body, "max_completion_tokens", int, 1) or _number(body, "max_tokens", int, 1)
        settings = self.session.with_settings(
            max_new_tokens=max_tokens, temperature=_number(body, "temperature", float, 0, 2),
            top_p=_number(body, "top_p", float, 0, 1), seed=_number(body, "seed", int, 0),
            repetition_penalty=_number(body, "repetition_penalty", float, 1))  # an extension, as in vLLM
        if settings.top_p <= 0:
            raise ApiError(400, "'top_p' must be above 0", param="top_p")
        stops = _stops(body.get("stop"))
        try:
            turn = self.session.prepare(persona, question, history, system=system,
                                        max_new_tokens=settings.max_new_tokens)
        except PromptTooLong as exc:
            raise ApiError(400, str(exc), "context_length_exceeded", param="messages") from None
        request = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": persona.slug}
        return request, turn, self.session.reply(turn, settings, extra_stops=stops)

    @staticmethod
    def usage(reply: Reply) -> dict:
        return {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens}

    def completion(self, request: dict, reply: Reply) -> dict:
        text = reply.collect()
        return {**request, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": reply.finish_reason}],
                "usage": self.usage(reply)}

    def chunks(self, request: dict, reply: Reply, include_usage: bool):
        """The streamed form: a role chunk, content chunks, a finish chunk (and a usage chunk when asked)."""
        def chunk(delta: dict, finish: str | None) -> dict:
            return {**request, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""}, None)
        for piece in reply:
            yield chunk({"content": piece}, None)
        yield chunk({}, reply.finish_reason)
        if include_usage:
            yield {**request, "object": "chat.completion.chunk", "choices": [], "usage": self.usage(reply)}


# ------------------------------------------------------------------------------------------- HTTP plumbing
class _Handler(BaseHTTPRequestHandler):
    server: PersonaServer
    protocol_version = "HTTP/1.1"
    server_version = "personaforge"

    def log_message(self, format: str, *args) -> None:
        self.server.log(f"{self.address_string()} {format % args}")

    def _send_json(self, status: int, data: dict) -> None:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, error: ApiError) -> None:
        self._send_json(error.status, error.body())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path == "/v1/models":
                self._send_json(200, self.server.api.models())
            elif path.startswith("/v1/models/"):
                self._send_json(200, self.server.api.model(path.removeprefix("/v1/models/")))
            else:
                raise ApiError(404, f"unknown path {path or '/'}; try /v1/models or /v1/chat/completions",
                               "unknown_url")
        except ApiError as error:
            self._error(error)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            if path != "/v1/chat/completions":
                raise ApiError(404, f"unknown path {path}; POST /v1/chat/completions", "unknown_url")
            body = self._read_json()
            with self.server.api.lock:
                request, _, reply = self.server.api.start(body)
                if body.get("stream"):
                    self._stream(request, reply, bool((body.get("stream_options") or {}).get("include_usage")))
                else:
                    self._send_json(200, self.server.api.completion(request, reply))
        except ApiError as error:
            self._error(error)
        except PersonaForgeError as exc:
            self._error(ApiError(400, str(exc)))
        except Exception as exc:  # noqa: BLE001 - a failed generation must still answer, and the server live on
            self.server.log(f"error: {type(exc).__name__}: {exc}")
            self._error(ApiError(500, f"generation failed: {type(exc).__name__}: {exc}", kind="server_error"))

    def _read_json(self) -> Any:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise ApiError(411, "a Content-Length header is required")
        if int(length) > MAX_BODY:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise ApiError(413, f"request body over {MAX_BODY} bytes")
        raw = self.rfile.read(int(length))
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ApiError(400, f"the request body is not valid JSON ({exc})", "invalid_json") from None

    def _stream(self, request: dict, reply: Reply, include_usage: bool) -> None:
        # No Content-Length: the event stream ends when the connection closes.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            try:
                for chunk in self.server.api.chunks(request, reply, include_usage):
                    self._event(json.dumps(chunk, ensure_ascii=False))
            except (BrokenPipeError, ConnectionResetError):
                return  # the client left: stop generating
            except Exception as exc:  # noqa: BLE001 - headers are out: report in-band, as OpenAI's stream does
                self._event(json.dumps(ApiError(500, f"generation failed: {exc}", kind="server_error").body()))
            self._event("[DONE]")
        finally:
            reply.close()

    def _event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()


class PersonaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], log: Log) -> None:
        self.log = log
        self.api: PersonaAPI | None = None
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def bind(host: str, port: int, log: Log) -> PersonaServer:
    """Binds first, so a port in use is reported before the model loads."""
    if not 0 <= port <= 65535:
        raise PersonaForgeError(f"--port {port}: use 1-65535 (or 0 for any free port)")
    try:
        return PersonaServer((host, port), log)
    except OSError as exc:
        raise PersonaForgeError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc});"
                                " pick another --port") from None


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")
