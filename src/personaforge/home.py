"""Where personaforge keeps caches: $PERSONAFORGE_HOME, else the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def personaforge_home() -> Path:
    home = os.environ.get("PERSONAFORGE_HOME")
    if home:
        return Path(home)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "personaforge"
