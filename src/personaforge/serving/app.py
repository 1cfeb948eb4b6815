"""The OpenAI-compatible app behind `persona serve`, on the studio's stack (FastAPI + uvicorn) and security rules.

    GET  /v1/models             one model per persona: id = the persona's slug, plus its display name
    GET  /v1/models/{id}
    POST /v1/chat/completions   model = a persona slug, name or alias; stream: true → server-sent events

- Loopback by default. Bound to another address, every request needs the API key (``Authorization: Bearer KEY``,
  what OpenAI clients send as their api_key); with --api-key given, loopback needs it too. The Host header must
  name the server (no DNS rebinding), a browser's cross-origin POST is refused.
- Bodies over MAX_BODY bytes are refused (413), read no further than that.
- Concurrent requests are decoded together (batcher.py); a client that disconnects, mid-stream or while waiting,
  ends its row of the batch (or leaves the queue) at the next decode step.
- Every error is OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from personaforge.serve import MAX_BODY, ApiError, PersonaAPI
from personaforge.serving.batcher import Batcher, Job
from personaforge.studio.api import BadRequest, read_json
from personaforge.studio.security import Check, Guard, Security, _send, is_loopback

DISCONNECT_POLL_S = 0.25


@dataclass
class ServeSecurity(Security):
    """The studio's rules with an API key: required off loopback, and on loopback too when the user set one."""

    always: bool = False
    max_body: int = MAX_BODY

    @property
    def require_token(self) -> bool:
        return self.always or not is_loopback(self.host)


class ApiGuard(Guard):
    pages = False

    async def refuse(self, send, path: str, problem: Check) -> None:
        kind = {403: "permission_error", 413: "invalid_request_error"}.get(problem.status, "invalid_request_error")
        message = problem.message.replace("this studio needs its token; open the URL it printed at start (?token=...)"
                                          " or send", "this server needs its API key:")
        body = json.dumps(ApiError(problem.status, message, kind=kind).body()).encode()
        await _send(send, problem.status, body, b"application/json")


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def create_app(api: PersonaAPI, batcher: Batcher, security: ServeSecurity) -> FastAPI:
    app = FastAPI(title="personaforge serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return _error(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request, exc: RequestValidationError):
        return _error(ApiError(400, f"bad request: {exc.errors()[0].get('msg', 'invalid') if exc.errors() else ''}"))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        if exc.status_code == 405:
            return _error(ApiError(405, "method not allowed: GET /v1/models, POST /v1/chat/completions",
                                   "method_not_allowed"))
        return _error(ApiError(exc.status_code, f"unknown path {request.url.path}; try /v1/models or"
                                                " /v1/chat/completions", "unknown_url"))

    @app.get("/v1/models")
    def models():
        return api.models()

    @app.get("/v1/models/{model_id}")
    def model(model_id: str):
        return api.model(model_id)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        try:
            body = await read_json(request, security.max_body)
        except BadRequest as exc:
            code = "invalid_json" if "JSON" in exc.message and exc.status == 400 else None
            raise ApiError(exc.status, exc.message, code) from None
        prepared = await asyncio.to_thread(api.prepare, body)  # tokenizing a long history is not free
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        job = Job(prepared.turn.prompt_ids, prepared.settings, prepared.stops,
                  on_event=lambda kind, value: loop.call_soon_threadsafe(events.put_nowait, (kind, value)))
        batcher.submit(job)
        request_info = prepared.request
        if prepared.stream:
            return StreamingResponse(_stream(api, job, request, events, request_info, prepared.include_usage),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            while True:
                got = await _next_event(request, events)
                if got is None:
                    return JSONResponse({}, status_code=499)  # nobody is listening; the finally frees the row
                kind, value = got
                if kind == "error":
                    raise ApiError(500, f"generation failed: {type(value).__name__}: {value}", kind="server_error")
                if kind == "done":
                    usage = api.usage(job.prompt_tokens, job.completion_tokens)
                    return api.completion(request_info, job.text, job.finish_reason, usage)
        finally:
            job.cancel.set()

    app.add_middleware(ApiGuard, security=security)
    return app


async def _next_event(request: Request, events: asyncio.Queue) -> tuple[str, object] | None:
    """The job's next event, or None once the client has disconnected (checked before every event is passed on:
    a closed connection can take a while to show as a failed write)."""
    while True:
        try:
            got = await asyncio.wait_for(events.get(), DISCONNECT_POLL_S)
        except asyncio.TimeoutError:
            got = None
        if await request.is_disconnected():
            return None
        if got is not None:
            return got


async def _stream(api: PersonaAPI, job: Job, http_request: Request, events: asyncio.Queue, request: dict,
                  include_usage: bool):
    def event(data: dict | str) -> str:
        return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"

    try:
        yield event(api.chunk(request, {"role": "assistant", "content": ""}, None))
        while True:
            got = await _next_event(http_request, events)
            if got is None:
                break  # the client left: the finally frees its row
            kind, value = got
            if kind == "text":
                yield event(api.chunk(request, {"content": value}, None))
            elif kind == "error":  # headers are out: report in-band, as OpenAI's stream does
                yield event(ApiError(500, f"generation failed: {value}", kind="server_error").body())
                break
            else:
                yield event(api.chunk(request, {}, job.finish_reason))
                if include_usage:
                    yield event(api.usage_chunk(request, api.usage(job.prompt_tokens, job.completion_tokens)))
                break
        if got is not None:
            yield event("[DONE]")
    finally:
        job.cancel.set()  # a client that disconnected mid-stream frees its row at the next step

