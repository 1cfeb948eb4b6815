"""Model size and the memory estimate preflight uses to refuse plans that cannot fit, with "would fit"
suggestions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from personaforge.models.common import Log, log_stderr
from personaforge.models.device import dtype_name, weights_dtype
from personaforge.models.fetch import embedded_model, is_cached
from personaforge.models.load import load_error, locate
from personaforge.models.sources import ModelSource

if TYPE_CHECKING:
    from personaforge.config import TrainConfig


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
    where = locate(source, revision, log)
    try:
        config = AutoConfig.from_pretrained(where.path, trust_remote_code=trust_remote_code, **where.kwargs)
    except (OSError, ValueError) as exc:
        raise load_error(source, exc, revision, where.unreachable) from None
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
    dtype = weights_dtype(cfg.model.dtype, device)  # float32 on a CPU, whatever the compute dtype
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
