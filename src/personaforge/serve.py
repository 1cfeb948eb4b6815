"""`persona serve`: an OpenAI-compatible API over a run's personas; this module is the API itself (requests in,
response bodies out), personaforge.serving serves it (FastAPI + uvicorn) and batches concurrent requests.

    GET  /v1/models             one model per persona: id = the persona's slug, plus its display name
    GET  /v1/models/{id}
    POST /v1/chat/completions   model = a persona slug, name or alias; stream: true → server-sent events

Messages map onto the training format: user/assistant pairs become the history, the last user message is the
question. A client system message replaces the persona's training system prompt (OpenAI semantics: the client
owns the conversation); send none to get the prompt the persona was trained with.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from personaforge.chat import ChatModel, PromptTooLong, Turn
from personaforge.generate import GenerationSettings
from personaforge.personas import normalize_label, slugify
from personaforge.prompting import Exchange
from personaforge.run_personas import RunPersona

MAX_BODY = 1024 * 1024  # a chat request's JSON body, in bytes


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
@dataclass
class Prepared:
    """A checked chat completion request, its prompt fitted, ready to decode."""

    request: dict  # id, created, model: shared by every body and chunk of the answer
    turn: Turn
    settings: GenerationSettings
    stops: list[str]
    stream: bool
    include_usage: bool


class PersonaAPI:
    """The endpoints, independent of the HTTP plumbing."""

    def __init__(self, session: ChatModel) -> None:
        self.session = session
        self.created = int(session.chat_run.run.path.stat().st_mtime)

    def models(self) -> dict:
        return {"object": "list", "data": [self.model_entry(p) for p in self.session.personas]}

    def model_entry(self, persona: RunPersona) -> dict:
        return {"id": persona.slug, "object": "model", "created": self.created, "owned_by": "personaforge",
                "name": persona.name, "description": model_description(persona),
                "run": self.session.chat_run.run.name}

    def model(self, model_id: str) -> dict:
        return self.model_entry(find_model(self.session.personas, model_id))

    def prepare(self, body: object) -> Prepared:
        """Checks a chat completion request and fits its prompt."""
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
        options = body.get("stream_options")
        if options is not None and not isinstance(options, dict):
            raise ApiError(400, "'stream_options' must be an object", param="stream_options")
        try:
            turn = self.session.prepare(persona, question, history, system=system,
                                        max_new_tokens=settings.max_new_tokens)
        except PromptTooLong as exc:
            raise ApiError(400, str(exc), "context_length_exceeded", param="messages") from None
        request = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": persona.slug}
        return Prepared(request, turn, settings, stops, bool(body.get("stream")),
                        bool((options or {}).get("include_usage")))

    @staticmethod
    def usage(prompt_tokens: int, completion_tokens: int) -> dict:
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    def completion(self, request: dict, text: str, finish_reason: str | None, usage: dict) -> dict:
        return {**request, "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish_reason}],
                "usage": usage}

    @staticmethod
    def chunk(request: dict, delta: dict, finish: str | None) -> dict:
        """One streamed chunk: first the role, then content pieces, then the finish reason."""
        return {**request, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    @staticmethod
    def usage_chunk(request: dict, usage: dict) -> dict:
        return {**request, "object": "chat.completion.chunk", "choices": [], "usage": usage}
