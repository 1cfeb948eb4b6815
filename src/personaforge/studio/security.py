"""Who may talk to the studio, and how.

- Bound to a loopback address (the default, 127.0.0.1), anyone on this machine may read; the Host header must name
  a loopback address, so a web page that rebinds its own domain to 127.0.0.1 gets nothing.
- Bound to any other address, every request needs the token printed once at start (``?token=`` on the first page,
  which then sets a same-site cookie; ``Authorization: Bearer TOKEN`` or ``X-Studio-Token`` for scripts); else 403.
- A change of state is a POST, never a GET. A POST from a browser must come from the studio's own origin (its
  Origin header, and Sec-Fetch-Site when sent); the page also sends the token. On loopback a script's POST (no
  Origin header) works without the token.
- Bodies over ``max_body`` bytes are refused (413), and every response forbids framing, sniffing, referrers and any
  script or style that is not the studio's own file (Content-Security-Policy).
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode

COOKIE = "personaforge_studio"
TOKEN_HEADER = "x-studio-token"
MAX_BODY = 64 * 1024
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
HEADERS = [
    (b"content-security-policy", b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                                 b" connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    host = host.strip().strip("[]")
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """'127.0.0.1:8765' → '127.0.0.1'; '[::1]:8765' → '::1'."""
    header = header.strip()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclass
class Security:
    host: str = "127.0.0.1"
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    max_body: int = MAX_BODY

    @property
    def require_token(self) -> bool:
        return not is_loopback(self.host)

    def valid(self, candidate: str | None) -> bool:
        return bool(candidate) and secrets.compare_digest(str(candidate).encode(), self.token.encode())


@dataclass
class Check:
    status: int
    message: str


class Guard:
    """ASGI middleware: refuses what the rules above forbid and adds the security headers to every response.
    ``pages``: whether a page opened with ?token= trades it for a cookie (the studio; not an API server)."""

    pages = True

    def __init__(self, app, security: Security) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", []):
            name = key.decode("latin-1").lower()
            headers[name] = value.decode("latin-1") if name not in headers else headers[name] + "," + value.decode("latin-1")
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed cookie header is the same as none
            cookie = SimpleCookie()
        path = scope.get("path", "")
        method = scope.get("method", "GET").upper()
        problem = self.check(method, headers, query, cookie)
        if problem is not None:
            await self.refuse(send, path, problem)
            return
        # A page opened with ?token=: keep the token in a cookie and drop it from the address bar and history.
        if self.pages and method == "GET" and not path.startswith("/api/") and "token" in query and self.security.valid(query["token"]):
            rest = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                                          keep_blank_values=True) if k != "token"])
            location = path + (f"?{rest}" if rest else "")
            await _send(send, 303, b"", b"text/plain; charset=utf-8", [
                (b"location", location.encode("latin-1", "replace")),
                (b"set-cookie", f"{COOKIE}={self.security.token}; Path=/; HttpOnly; SameSite=Strict".encode())])
            return

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *HEADERS]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def refuse(self, send, path: str, problem: Check) -> None:
        await _refuse(send, path, problem)

    def check(self, method: str, headers: dict[str, str], query: dict[str, str], cookie: SimpleCookie) -> Check | None:
        security = self.security
        host = headers.get("host", "")
        bearer = headers.get("authorization", "")
        bearer = bearer[7:].strip() if bearer.lower().startswith("bearer ") else None
        sent = next((t for t in (headers.get(TOKEN_HEADER), bearer, query.get("token")) if t), None)
        from_cookie = cookie[COOKIE].value if COOKIE in cookie else None
        token_ok = security.valid(sent)
        if security.require_token:
            if not (token_ok or security.valid(from_cookie)):
                return Check(403, "forbidden: this studio needs its token; open the URL it printed at start"
                                  " (?token=...) or send Authorization: Bearer TOKEN")
        elif not is_loopback(host_name(host)) and host_name(host) != security.host:
            return Check(403, f"forbidden: unexpected Host header {host!r}; open the studio at its printed address")
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            return Check(400, "bad Content-Length header")
        if length > security.max_body:
            return Check(413, f"request body too large ({length} bytes; at most {security.max_body})")
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        fetch_site = headers.get("sec-fetch-site")
        if origin is not None and origin != f"http://{host}":
            return Check(403, f"forbidden: cross-origin request from {origin!r} refused")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return Check(403, f"forbidden: {fetch_site} request refused")
        if token_ok:
            return None
        if security.require_token:
            # the cookie alone does not authorize a change: the page sends the token in a header, a form cannot
            return Check(403, "forbidden: a change needs the token in the X-Studio-Token or Authorization header")
        if origin is None and fetch_site is None:
            return None  # a script on this machine (no browser sends a POST without an Origin)
        if origin is not None:
            return None  # same origin, checked above
        return Check(403, "forbidden: a change needs the studio's own page or its token")


async def _send(send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]] = ()) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
                            *extra, *HEADERS]})
    await send({"type": "http.response.body", "body": body})


async def _refuse(send, path: str, problem: Check) -> None:
    if path.startswith("/api/"):
        body = json.dumps({"error": problem.message}).encode()
        await _send(send, problem.status, body, b"application/json")
        return
    import html

    body = (f"<!doctype html><meta charset=utf-8><title>{problem.status}</title>"
            f"<p>{html.escape(problem.message)}</p>").encode()
    await _send(send, problem.status, body, b"text/html; charset=utf-8")
