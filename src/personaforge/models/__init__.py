"""Models, along their five jobs: resolving what a config names (sources), fetching and building the embedded and
GGUF models (fetch), choosing device and dtype (device), loading with safe-weights checks and readable hub errors
(load), and the memory estimate with its "would fit" suggestions (memory). common holds what they share.

Stages import the names below from here; a submodule's private helpers stay in it.
"""

from personaforge.errors import PersonaForgeError  # tests reach it as models.PersonaForgeError
from personaforge.models.common import PROVENANCE, Log, log_stderr, quiet_transformers
from personaforge.models.device import DTYPES, Precision, dtype_name, pick_device, pick_dtype, pick_precision
from personaforge.models.fetch import (EMBEDDED, EMBEDDED_HINT, EmbeddedModel, embedded_dir, embedded_model,
                                       gguf_cache_dir, is_cached, model_rows, prepare_gguf, pull_embedded)
from personaforge.models.load import (LoadedModel, check_safe_weights, check_source_weights, hub_error,
                                      hub_unreachable_reason, load_adapter, load_model, load_tokenizer)
from personaforge.models.memory import (MemoryEstimate, ModelShape, available_memory, count_params, estimate_memory,
                                        model_shape, suggest_fits)
from personaforge.models.sources import ModelSource, resolve_source

__all__ = [
    "DTYPES", "EMBEDDED", "EMBEDDED_HINT", "PROVENANCE", "EmbeddedModel", "LoadedModel", "Log", "MemoryEstimate",
    "ModelShape", "ModelSource", "PersonaForgeError", "Precision", "available_memory", "check_safe_weights", "check_source_weights",
    "count_params", "dtype_name", "embedded_dir", "embedded_model", "estimate_memory", "gguf_cache_dir", "hub_error",
    "hub_unreachable_reason", "is_cached", "load_adapter", "load_model", "load_tokenizer", "log_stderr", "model_rows",
    "model_shape", "pick_device", "pick_dtype", "pick_precision", "prepare_gguf", "pull_embedded", "quiet_transformers",
    "resolve_source", "suggest_fits",
]
