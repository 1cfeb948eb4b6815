"""Loading tokenizers, models and adapters: safe-weights checks, attention and quantization choice, and hub
errors turned into one line that says what to do."""

from __future__ import annotations

import importlib.util
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import torch

from personaforge.errors import PersonaForgeError
from personaforge.models.common import first_line, Log, log_stderr, quiet_transformers
from personaforge.models.device import dtype_name, pick_device, pick_precision, Precision
from personaforge.models.fetch import EMBEDDED_HINT, prepare_gguf, pull_embedded
from personaforge.models.sources import ModelSource, resolve_source

if TYPE_CHECKING:
    from personaforge.config import ModelSection


# ------------------------------------------------------------------------------------------- hub errors


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def is_network_error(exc: BaseException) -> bool:
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
    for cause in exception_chain(exc):
        if isinstance(cause, GatedRepoError):
            return PersonaForgeError(f"model '{name}' is gated: accept its license on https://huggingface.co/{name}"
                                     f" and {login}")
        if isinstance(cause, RevisionNotFoundError):
            return PersonaForgeError(f"model '{name}': revision '{revision}' not found on the hub;"
                                     " check model.revision")
        if isinstance(cause, RepositoryNotFoundError):
            return PersonaForgeError(f"model '{name}' was not found on the Hugging Face Hub (if it is private,"
                                     f" {login}); check model.name, or {EMBEDDED_HINT}")
        if isinstance(cause, LocalEntryNotFoundError) or is_network_error(cause):
            why = f" ({unreachable})" if unreachable else ""
            return PersonaForgeError(f"model '{name}': the Hugging Face Hub cannot be reached{why} and the model is not"
                                     f" in the local cache; {EMBEDDED_HINT}, or connect and retry")
        if isinstance(cause, HfHubHTTPError):
            status = getattr(getattr(cause, "response", None), "status_code", None)
            if status in (401, 403):
                return PersonaForgeError(f"model '{name}': the hub refused access (HTTP {status}); request access on"
                                         f" https://huggingface.co/{name} and {login}")
            return PersonaForgeError(f"model '{name}': the hub answered with an error ({first_line(cause)});"
                                     " retry later")
    return None


def load_error(source: ModelSource, exc: BaseException, revision: str | None,
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
                                 f" ({first_line(exc)}); upgrade transformers or pick another model")
    return PersonaForgeError(f"model '{source.name}': cannot load ({first_line(exc)})")


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


def locate(source: ModelSource, revision: str | None = None, log: Log = log_stderr) -> _Where:
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
        raise load_error(source, exc, revision, where.unreachable) from None
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
        if notes is not None:
            notes.append(f"tokenizer has no pad token; padding with EOS ({tokenizer.eos_token})")
    return tokenizer


def load_tokenizer(source: ModelSource, trust_remote_code: bool = False, *, revision: str | None = None,
                   notes: list[str] | None = None, log: Log = log_stderr):
    """The source's tokenizer; a missing pad token falls back to EOS (noted in ``notes``)."""
    return _tokenizer_at(locate(source, revision, log), source, trust_remote_code, revision, notes)


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
    where = locate(source, cfg.revision, log)
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
            notes.append(f"{attn} is not supported by this model ({first_line(exc)}); using the default attention")
            kwargs.pop("attn_implementation")
            model = _from_pretrained(where, config, kwargs, notes)
    except (OSError, ValueError) as exc:
        refused = source.kind == "hub" and not allow_pickle and "safetensors" in str(exc)
        if refused and hub_error(source.name, exc) is None:  # the repo exists but holds only pickle weights
            raise PersonaForgeError(f"model '{cfg.name}' has no safetensors weights, only pickle files that can run"
                                    f" code when loaded; {PICKLE_ADVICE}") from None
        raise load_error(source, exc, cfg.revision, where.unreachable) from None
    if quantization is None:
        model.to(device)
    used = getattr(model.config, "_attn_implementation", None) or attn or "eager"
    return LoadedModel(model, tokenizer, source, device, dtype, used, notes, precision)
