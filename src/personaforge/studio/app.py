"""The studio's web app: pages, JSON API and static files behind the security guard; and serving it with uvicorn."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from personaforge.errors import PersonaForgeError
from personaforge.studio import api, pages
from personaforge.studio import arena as arena_routes
from personaforge.studio.arena import Arena
from personaforge.studio.security import Guard, Security
from personaforge.studio.state import Studio

STATIC = Path(__file__).with_name("static")


def create_app(studio: Studio | None, security: Security, arena: Arena | None = None) -> FastAPI:
    """The review pages for ``studio`` and the arena tab for ``arena``; either may be None (not both)."""
    app = FastAPI(title="personaforge studio", docs_url=None, redoc_url=None, openapi_url=None)
    if studio is not None:
        app.include_router(api.router(studio, security))
        app.include_router(pages.router(studio, security, arena=arena is not None))
    if arena is not None:
        app.include_router(arena_routes.router(arena, security, review=studio is not None))
        if studio is None:
            app.add_api_route("/", lambda: RedirectResponse("/arena", status_code=303), include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        messages = {404: "not found", 405: "method not allowed: a change is a POST to /api/records/{id}/decision"}
        return JSONResponse({"error": messages.get(exc.status_code, str(exc.detail))}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    app.add_middleware(Guard, security=security)
    return app


def url_of(host: str, port: int, security: Security) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?token={security.token}" if security.require_token else "")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port or a bad address is a one-line error before anything starts."""
    if not 0 <= port <= 65535:
        raise PersonaForgeError(f"--port {port}: use a port between 1 and 65535 (0 picks a free one)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PersonaForgeError(f"--host {host}: cannot resolve it ({exc.strerror}); use an address such as"
                                " 127.0.0.1") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PersonaForgeError(f"port {port} on {host} is in use; pass another --port (0 picks a free one)") from None
        raise PersonaForgeError(f"cannot listen on {host}:{port} ({exc.strerror}); check --host and --port") from None
    sock.set_inheritable(True)
    return sock


def _server(app, on_ready: Callable[[], None] | None):
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started and on_ready is not None:
                on_ready()

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return Server(config)


def serve(app, sock: socket.socket, on_ready: Callable[[], None]) -> None:
    """Serve until Ctrl-C (or SIGTERM)."""
    server = _server(app, on_ready)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


class Background:
    """The app served from a thread on a free port (tests, scripted screenshots): ``with Background(app) as url:``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, security: Security | None = None) -> None:
        self.sock = bind(host, port)
        self.port = self.sock.getsockname()[1]
        self.url = url_of(host, self.port, security or Security(host))
        self.ready = threading.Event()
        self.server = _server(app, self.ready.set)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.ready.wait(0.05):
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio server did not start")
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
