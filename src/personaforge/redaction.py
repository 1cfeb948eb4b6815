"""Keeping secrets (HF token, teacher API keys) out of what the tool writes and prints."""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"
# Key names that hold secrets (not max_new_tokens): in configs, overrides and URL query strings.
SECRET_KEY = re.compile(r"(^|_)(token|secret|password|api_?key|key)(_env)?$", re.IGNORECASE)
# Shapes of well-known credentials, caught wherever they turn up in a message.
TOKEN_SHAPES = re.compile(r"\bhf_[A-Za-z0-9]{20,}|\bsk-[A-Za-z0-9_-]{16,}")
_SECRET_ENV = re.compile(r"(TOKEN|SECRET|PASSWORD|API_?KEY)$", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    return bool(SECRET_KEY.search(str(name).rsplit(".", 1)[-1]))


def _env_secrets() -> list[str]:
    # Short values ("1", "true") are flags, not secrets; replacing them would garble messages.
    values = {value for name, value in os.environ.items() if _SECRET_ENV.search(name) and len(value) >= 8}
    return sorted(values, key=len, reverse=True)


def scrub(text: str) -> str:
    """``text`` with the values of secret environment variables and token-shaped strings replaced."""
    for value in _env_secrets():
        text = text.replace(value, REDACTED)
    return TOKEN_SHAPES.sub(REDACTED, text)


def redact_url(url: str) -> str:
    """A URL safe to show: no user:password, and secret-looking query parameters (?api_key=...) redacted."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe="<>")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_override(text: str) -> str:
    """'teacher.api_key=sk-...' → 'teacher.api_key=<redacted>': overrides are echoed in error messages."""
    key, sep, value = text.partition("=")
    return f"{key}={REDACTED}" if sep and value and is_secret_key(key.strip()) else text
