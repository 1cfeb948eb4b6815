"""Configs written for the original pipeline: flat keys (model_name, lora_r, ...) mapped onto our sections.

Every legacy key either maps to a sectioned key, or is ignored with a note that says what to do instead;
anything else is an error. The original silently ignored keys it did not know, and we must not.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from personaforge.config import TrainConfig
from personaforge.errors import PersonaForgeError
from personaforge.yamlio import YamlDoc

SECTIONS: frozenset[str] = frozenset(TrainConfig.model_fields)

# Legacy keys that carry over unchanged apart from their place.
RENAMES: dict[str, str] = {
    "model_name": "model.name",
    "trust_remote_code": "model.trust_remote_code",
    "attn_implementation": "model.attn",
    "gradient_checkpointing": "model.gradient_checkpointing",
    "max_length": "data.max_length",
    "max_seq_length": "data.max_length",
    "lora_r": "lora.r",
    "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout",
    "lora_target_modules": "lora.target_modules",
    "target_modules": "lora.target_modules",
    "epochs": "train.epochs",
    "num_epochs": "train.epochs",
    "num_train_epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "per_device_train_batch_size": "train.batch_size",
    "gradient_accumulation_steps": "train.grad_accum",
    "lr": "train.lr",
    "learning_rate": "train.lr",
    "lr_scheduler_type": "train.scheduler",
    "warmup_ratio": "train.warmup_ratio",
    "weight_decay": "train.weight_decay",
    "max_grad_norm": "train.max_grad_norm",
    "seed": "train.seed",
    "logging_steps": "train.logging_steps",
    "eval_steps": "train.eval_every",
    "save_steps": "train.save_every",
    "save_total_limit": "train.save_total_limit",
    "early_stopping_patience": "train.early_stopping_patience",
    "output_dir": "output.dir",
}

# Legacy keys with nothing to map to: why, and what to do instead.
IGNORED: dict[str, str] = {
    "report_to": "personaforge always writes TensorBoard logs to RUN/logs",
    "logging_dir": "personaforge always writes TensorBoard logs to RUN/logs",
}

# Keys whose meaning depends on a partner key; each group is mapped once, where its first key appears.
GROUPS: dict[str, str] = {
    "bf16": "dtype", "fp16": "dtype",
    "load_in_4bit": "quantization", "load_in_8bit": "quantization",
    "dataset_path": "dataset", "dataset_pattern": "dataset",
}

SPECIAL: frozenset[str] = frozenset({"max_steps", "cuda_visible_devices"})
LEGACY_KEYS: frozenset[str] = frozenset(RENAMES) | frozenset(IGNORED) | frozenset(GROUPS) | SPECIAL

# Keys whose personaforge default differs from what an original config probably assumed; an unset one is
# named in a note so a mapped run is not silently different.
CORE_KEYS: tuple[str, ...] = ("train.epochs", "train.batch_size", "train.grad_accum", "train.lr", "lora.r",
                              "lora.alpha", "lora.dropout", "data.max_length")

GLOB_CHARS = set("*?[")


def is_legacy_config(data: dict) -> bool:
    """True for a flat config of the original pipeline: some of its keys and none of our sections."""
    keys = set(data)
    return not keys & SECTIONS and bool(keys & LEGACY_KEYS)


@dataclass
class _Mapping:
    """The sectioned dict being built, the notes for the user, and which legacy key set each target."""

    doc: YamlDoc
    data: dict
    out: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    set_by: dict[str, str] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return self.doc.where((key,))

    def put(self, key: str, target: str, value: Any) -> None:
        """Set ``target`` (section.key) from legacy ``key``, checking the value against our schema first."""
        if target in self.set_by:
            raise PersonaForgeError(
                f"{self.where(key)}: '{key}' and '{self.set_by[target]}' both set {target}; keep one")
        self.set_by[target] = key
        section, name = target.split(".")
        self.out.setdefault(section, {})[name] = _checked(self, key, target, value)


def _field_adapter(target: str) -> TypeAdapter:
    section, name = target.split(".")
    info = TrainConfig.model_fields[section].annotation.model_fields[name]
    annotation = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(annotation)


def _checked(mapping: _Mapping, key: str, target: str, value: Any) -> Any:
    """Validate one value here, while its line is still known (load_train_config drops the doc after mapping)."""
    try:
        return _field_adapter(target).validate_python(value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 60 else ""
        raise PersonaForgeError(f"{mapping.where(key)}: key '{key}' (→ {target}): {message}{shown}") from None


def _flag(mapping: _Mapping, key: str) -> bool | None:
    """A legacy true/false key: None when absent."""
    if key not in mapping.data:
        return None
    try:
        return TypeAdapter(bool).validate_python(mapping.data[key])
    except ValidationError:
        raise PersonaForgeError(
            f"{mapping.where(key)}: key '{key}' must be true or false (got {mapping.data[key]!r})") from None


def _text(mapping: _Mapping, key: str) -> str | None:
    value = mapping.data.get(key)
    if value is not None and not isinstance(value, str):
        raise PersonaForgeError(f"{mapping.where(key)}: key '{key}' must be a path (got {value!r})")
    return value


# ------------------------------------------------------------------------------------------ handlers
def _rename(mapping: _Mapping, key: str, target: str | None = None) -> None:
    target = target or RENAMES[key]
    mapping.put(key, target, mapping.data[key])
    mapping.notes.append(f"{key} → {target}")


def _ignored(mapping: _Mapping, key: str) -> None:
    mapping.notes.append(f"{key} is ignored: {IGNORED[key]}")


def _max_steps(mapping: _Mapping, key: str) -> None:
    value = mapping.data[key]
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        # Transformers spells "no step limit" as -1; ours is 0.
        mapping.put(key, "train.max_steps", 0)
        mapping.notes.append(f"max_steps: {value} → train.max_steps: 0 (no step limit; epochs decide)")
        return
    _rename(mapping, key, "train.max_steps")


def _cuda_visible_devices(mapping: _Mapping, key: str) -> None:
    value = mapping.data[key]
    devices = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
    # A config cannot choose devices reliably: CUDA reads the variable once, before our code runs.
    mapping.notes.append(f"cuda_visible_devices is ignored: set CUDA_VISIBLE_DEVICES in the environment "
                         f"(CUDA_VISIBLE_DEVICES={devices} persona train ...)")


def _exclusive(mapping: _Mapping, key: str, target: str, choices: dict[str, tuple[str, str]],
               fallback: tuple[str, str], conflict: str) -> None:
    """Two original flags that select one value of ours (bf16/fp16, load_in_4bit/load_in_8bit)."""
    on = [flag for flag in choices if _flag(mapping, flag)]
    if len(on) > 1:
        second = max(on, key=lambda k: mapping.doc.line_of((k,)) or 0)
        raise PersonaForgeError(f"{mapping.where(second)}: {' and '.join(choices)} are both true; {conflict}")
    if on:
        value, note = choices[on[0]]
        mapping.put(on[0], target, value)
        mapping.notes.append(f"{on[0]}: true → {target}: {value}{note}")
        return
    value, note = fallback
    mapping.put(key, target, value)
    given = " and ".join(f"{k}: false" for k in choices if k in mapping.data)
    mapping.notes.append(f"{given} → {target}: {value}{note}")


def _dtype(mapping: _Mapping, key: str) -> None:
    # Transformers trains in full precision when both are false; keep that, but say how to get the speed back.
    _exclusive(mapping, key, "model.dtype",
               {"bf16": ("bfloat16", ""), "fp16": ("float16", " (with loss scaling)")},
               ("float32", " (model.dtype=auto picks bfloat16 or float16 on a GPU)"),
               "keep one (or neither, for full precision)")


def _quantization(mapping: _Mapping, key: str) -> None:
    _exclusive(mapping, key, "model.quantization",
               {"load_in_4bit": ("4bit", " (QLoRA: nf4, double quantization)"), "load_in_8bit": ("8bit", "")},
               ("none", ""), "keep one")


def _dataset(mapping: _Mapping, key: str) -> None:
    folder, pattern = _text(mapping, "dataset_path"), _text(mapping, "dataset_pattern")
    if pattern is None:
        mapping.put("dataset_path", "data.path", folder)
        mapping.notes.append("dataset_path → data.path")
        return
    path, why = _dataset_from_pattern(mapping, folder or ".", pattern)
    mapping.put(key, "data.path", path)
    source = "dataset_path + dataset_pattern" if folder is not None else "dataset_pattern"
    mapping.notes.append(f"{source} '{pattern}' → data.path: {path} ({why})")


def _dataset_from_pattern(mapping: _Mapping, folder: str, pattern: str) -> tuple[str, str]:
    """The original globbed jsonl files inside dataset_path; we take one .jsonl file or a train/eval folder."""
    base = Path(folder)
    if not GLOB_CHARS & set(pattern):
        return (base / pattern).as_posix(), "the file it names"
    try:
        matches = sorted(p for p in base.glob(pattern) if p.is_file())
    except (ValueError, OSError, NotImplementedError) as exc:  # e.g. an absolute pattern
        raise PersonaForgeError(f"{mapping.where('dataset_pattern')}: dataset_pattern '{pattern}' "
                                f"cannot be used ({exc}); give a glob like '*.jsonl'") from None
    if len(matches) == 1:
        return matches[0].as_posix(), "the one file it matches"
    train = next((p for p in matches if p.name == "train.jsonl"), None)
    if train is not None:
        names = ", ".join(p.relative_to(base).as_posix() for p in matches)
        unread = [p.relative_to(base).as_posix() for p in matches
                  if p.parent != train.parent or p.name not in ("train.jsonl", "eval.jsonl")]
        why = f"it matches {names}; personaforge reads train.jsonl and eval.jsonl from that folder"
        return train.parent.as_posix(), why + (f"; not read: {', '.join(unread)}" if unread else "")
    if matches:
        shown = ", ".join(p.name for p in matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise PersonaForgeError(
            f"{mapping.where('dataset_pattern')}: dataset_pattern '{pattern}' matches {len(matches)} files in "
            f"{base.as_posix()} ({shown}); personaforge reads one .jsonl file or a folder with train.jsonl and "
            "eval.jsonl: merge them, or make the pattern match one file")
    # Nothing to look at yet (the dataset may be built later): the folder is the likeliest intent, and the
    # dataset check before training says exactly what is missing.
    return base.as_posix(), "nothing matches there yet; personaforge reads train.jsonl and eval.jsonl from the folder"


HANDLERS: dict[str, Callable[[_Mapping, str], None]] = {
    "max_steps": _max_steps,
    "cuda_visible_devices": _cuda_visible_devices,
    "dtype": _dtype,
    "quantization": _quantization,
    "dataset": _dataset,
}


# ------------------------------------------------------------------------------------------ mapping
def _unknown_key_hint(key: str) -> str:
    close = difflib.get_close_matches(key, sorted(LEGACY_KEYS), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "remove it, or write the whole config in personaforge's sections (see configs/train/)"


def _check_keys(data: dict, doc: YamlDoc) -> None:
    for key in data:
        if key not in LEGACY_KEYS:
            raise PersonaForgeError(
                f"{doc.where((str(key),))}: unknown key '{key}' in a config for the original pipeline; "
                f"{_unknown_key_hint(str(key))}")


def _closing_notes(mapping: _Mapping) -> None:
    """What differs from the original even when every key mapped: prompt format, padding, unset defaults."""
    # The original trained every model, instruct ones too, on its plain "Human: / Name:" text.
    mapping.out.setdefault("data", {})["prompt_style"] = "plain"
    mapping.notes.append("data.prompt_style: plain, the original's 'Human: ... <Name>:' prompt for every model "
                         "(data.prompt_style=auto uses an instruct model's chat template)")
    mapping.notes.append("the original padded every sample to max_length; personaforge packs samples without "
                         "padding (train.packing: true), so max_length only caps each sample")
    unset = [target for target in CORE_KEYS if target not in mapping.set_by]
    if unset:
        shown = ", ".join(f"{target}: {_default(target)}" for target in unset)
        mapping.notes.append(f"not set, so personaforge's defaults apply: {shown}")


def _default(target: str) -> Any:
    section, name = target.split(".")
    return TrainConfig.model_fields[section].annotation.model_fields[name].get_default(call_default_factory=True)


def map_legacy_config(data: dict, doc: YamlDoc) -> tuple[dict, list[str]]:
    """Map a flat original-pipeline config to our sections; returns the sectioned dict and notes for the user."""
    _check_keys(data, doc)
    mapping = _Mapping(doc=doc, data=data)
    done: set[str] = set()
    for key in data:
        group = GROUPS.get(key, key)
        if group in done:
            continue
        done.add(group)
        if key in RENAMES:
            _rename(mapping, key)
        elif key in IGNORED:
            _ignored(mapping, key)
        else:
            HANDLERS[group](mapping, key)
    _closing_notes(mapping)
    return mapping.out, mapping.notes
