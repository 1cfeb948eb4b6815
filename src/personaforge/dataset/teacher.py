"""A client for any OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp server).

Responses are cached on disk by a hash of the request, so a rebuild is fast and byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from personaforge.config import TeacherConfig
from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text
from personaforge.home import personaforge_home
from personaforge.redaction import redact_url

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def completions_url(url: str) -> str:
    """.../v1/chat/completions for a base URL; a query string (?api-version=..., ?key=...) stays at the end."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path.endswith("/chat/completions"):
        path = (path if path.endswith("/v1") else path + "/v1") + "/chat/completions"
    return urlunsplit(parts._replace(path=path))


class TeacherClient:
    def __init__(self, config: TeacherConfig) -> None:
        self.config = config
        self.url = completions_url(config.url)
        self.shown_url = redact_url(self.url)  # for messages: a key in the URL's query never reaches the screen
        self.cache_dir = Path(config.cache_dir) if config.cache_dir else personaforge_home() / "teacher-cache"
        self.requests = 0
        self.cache_hits = 0

    @property
    def tag(self) -> str:
        return f"teacher:{self.config.model}"

    def complete(self, system: str, user: str, max_tokens: int = 300) -> str:
        body = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.config.temperature,
            "max_tokens": max_tokens,
            "seed": 0,
        }
        # The key excludes the URL so the same model behind another host reuses the cache.
        key = hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        cached = self.cache_dir / key[:2] / f"{key}.json"
        if cached.exists():
            try:
                self.cache_hits += 1
                return json.loads(cached.read_text(encoding="utf-8"))["content"]
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is fetched again
        content = self._post(body)
        atomic_write_text(cached, json.dumps({"request": body, "content": content}, ensure_ascii=False))
        return content

    def _post(self, body: dict) -> str:
        headers = {"Content-Type": "application/json"}
        api_key = os.environ.get(self.config.api_key_env)
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        data = json.dumps(body).encode("utf-8")
        last_problem = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            self.requests += 1
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                last_problem = f"HTTP {exc.code}"
                if exc.code in (401, 403):
                    raise PersonaForgeError(
                        f"teacher at {self.shown_url} refused the request (HTTP {exc.code});"
                        f" set {self.config.api_key_env}"
                    ) from None
                if exc.code == 404:
                    raise PersonaForgeError(
                        f"teacher at {self.shown_url} answered 404; check --teacher-url and that model '{self.config.model}' exists"
                    ) from None
                if exc.code not in RETRY_STATUS:
                    raise PersonaForgeError(f"teacher at {self.shown_url} answered HTTP {exc.code}; check the server") from None
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last_problem = str(reason) or type(exc).__name__
                continue
            except ValueError:
                last_problem = "response was not JSON"
                continue
            try:
                content = payload["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                last_problem = "response had no choices[0].message.content"
                continue
            if isinstance(content, str):
                # An empty answer is an answer (at temperature 0 asking again gives it again): the caller's
                # checks turn it down and fall back for that record.
                return content.strip()
            last_problem = "response content was not text"
        raise PersonaForgeError(
            f"teacher at {self.shown_url} failed after {self.config.retries + 1} tries ({last_problem});"
            " check that the server is running, or build without --teacher-url"
        )
