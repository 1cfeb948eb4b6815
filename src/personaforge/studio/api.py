"""The JSON API under /api/ that the review page uses, and scripts may use too.

GET  /api/records?persona=&type=&generator=&split=&status=&sort=risk|file&offset=&limit=   → {"records": [...], "total"}
GET  /api/records/{id}                    → the record, its decision and history, provenance
POST /api/records/{id}/decision           {"action": "accept"|"reject"|"edit"|"flag", "question"?, "answer"?,
                                           "reason"?, "base"?}  → the record as it now is, and what it replaced
POST /api/undo                            {"decision"?: KEY}  → takes back that decision (default: the latest)
GET  /api/progress                        → counts per persona and type
GET  /api/stale                           → stale and orphaned decisions, old and new text
Errors are {"error": "..."} with 400 (bad input), 403, 404 (no such record), 409 (nothing to undo), 413, 415.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from personaforge.dataset.review import NothingToUndo, ReviewError
from personaforge.errors import PersonaForgeError
from personaforge.studio.security import Security
from personaforge.studio.state import NotFound, Studio

DECISION_KEYS = {"action", "question", "answer", "reason", "base"}


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def read_json(request: Request, limit: int, required: bool = True) -> dict:
    """The request's JSON object, read no further than ``limit`` bytes."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(413, f"request body too large (more than {limit} bytes)")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        if required:
            raise BadRequest(400, 'send a JSON object, e.g. {"action": "accept"}')
        return {}
    if kind != "application/json":
        raise BadRequest(415, "send the body as JSON with Content-Type: application/json")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadRequest(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return data


def _text(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(400, f"'{key}' must be a string")
    return value


def router(studio: Studio, security: Security) -> APIRouter:
    api = APIRouter(prefix="/api")

    async def call(function, *args, **kwargs):
        try:
            return JSONResponse(await run_in_threadpool(function, *args, **kwargs))
        except NotFound as exc:
            return error(404, str(exc))
        except NothingToUndo as exc:
            return error(409, str(exc))
        except ReviewError as exc:
            return error(400, str(exc))
        except PersonaForgeError as exc:
            return error(500, str(exc))

    @api.get("/records")
    async def records(persona: str = "", type: str = "", generator: str = "", split: str = "", status: str = "",
                      sort: str = "risk", offset: int = 0, limit: int = 50):
        return await call(studio.query, persona=persona, type=type, generator=generator, split=split, status=status,
                          sort=sort, offset=offset, limit=limit)

    @api.get("/records/{record_id}")
    async def record(record_id: str):
        return await call(studio.detail, record_id)

    @api.post("/records/{record_id}/decision")
    async def decision(record_id: str, request: Request):
        try:
            data = await read_json(request, security.max_body)
            unknown = sorted(set(data) - DECISION_KEYS)
            if unknown:
                raise BadRequest(400, f"unknown key '{unknown[0]}'; a decision takes {', '.join(sorted(DECISION_KEYS))}")
            action = data.get("action")
            if not isinstance(action, str):
                raise BadRequest(400, "give an action: accept, reject, edit or flag")
            args = {k: _text(data, k) for k in ("question", "answer", "reason", "base")}
        except BadRequest as exc:
            return error(exc.status, exc.message)
        return await call(studio.decide, record_id, action, **args)

    @api.post("/undo")
    async def undo(request: Request):
        try:
            data = await read_json(request, security.max_body, required=False)
            key = _text(data, "decision")
        except BadRequest as exc:
            return error(exc.status, exc.message)
        return await call(studio.undo, key)

    @api.get("/progress")
    async def progress():
        return await call(studio.progress)

    @api.get("/stale")
    async def stale():
        return await call(studio.stale)

    return api
