"""The original pipeline's flat train configs (model_name, lora_r, ...) mapped onto our sections: a translation that
runs before validation and depends on the schema, never the other way round. (Its prompt/completion-only records are
parsed by personaforge.prompting, the owner of that format.)

Every legacy key either maps to a sectioned key, or is ignored with a note that says what personaforge does
instead; anything else is an error. The original silently ignored keys it did not know, and we must not.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import TypeAdapter, ValidationError

from personaforge.config.schema import TrainConfig
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

# Legacy keys with nothing to map to: what personaforge does instead. Most tuned the original's own machinery
# (a pre-tokenized cache, data loader workers, HF Trainer strategy strings); every one of its configs has them.
_NO_WORKERS = ("personaforge tokenizes every record before training starts and builds batches in the training"
               " process, so there is nothing for loader workers to fetch")
_NO_CACHE = ("personaforge tokenizes the records at the start of every run (seconds) and keeps no token cache, so"
             " an edited data file can never train on stale tokens; data.json records each file's hash")
IGNORED: dict[str, str] = {
    "report_to": "personaforge always writes TensorBoard logs to RUN/logs",
    "logging_dir": "personaforge always writes TensorBoard logs to RUN/logs",
    "tokenized_path": _NO_CACHE,
    "use_tokenized": _NO_CACHE,
    "data_format": "personaforge reads each record's own fields (prompt/completion, or messages) and needs no"
                   " format name (data.format: auto)",
    "logging_strategy": "personaforge logs the loss every train.logging_steps steps (logging_steps maps there) to"
                        " RUN/logs (TensorBoard)",
    "dataloader_num_workers": _NO_WORKERS,
    "dataloader_prefetch_factor": _NO_WORKERS,
}

# Keys whose meaning depends on a partner key; each group is mapped once, where its first key appears.
GROUPS: dict[str, str] = {
    "bf16": "dtype", "fp16": "dtype",
    "load_in_4bit": "quantization", "load_in_8bit": "quantization",
    "dataset_path": "dataset", "dataset_pattern": "dataset",
}

SPECIAL: frozenset[str] = frozenset({"max_steps", "cuda_visible_devices", "data_source", "evaluation_strategy"})
LEGACY_KEYS: frozenset[str] = frozenset(RENAMES) | frozenset(IGNORED) | frozenset(GROUPS) | SPECIAL

# Keys whose personaforge default differs from what an original config probably assumed; an unset one is
# named in a note so a mapped run is not silently different.
CORE_KEYS: tuple[str, ...] = ("train.epochs", "train.batch_size", "train.grad_accum", "train.lr", "lora.r",
                              "lora.alpha", "lora.dropout", "data.max_length")

GLOB_CHARS = set("*?[")
EVAL_FOLDER = "eval"  # the original's eval set: data/eval/eval.jsonl beside data/batch_*.jsonl


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


def _data_source(mapping: _Mapping, key: str) -> None:
    """The original's `data_source: {type: local}`; it could only read local files, and so does personaforge."""
    value = mapping.data[key]
    kind = value.get("type", "local") if isinstance(value, dict) else value
    if kind != "local":
        raise PersonaForgeError(f"{mapping.where(key)}: data_source type {kind!r}: personaforge reads local .jsonl files"
                                " only; download the data and give its folder as dataset_path (with data_source:"
                                " {type: local}, or without data_source)")
    mapping.notes.append("data_source (type: local) is ignored: personaforge reads the local files dataset_path names")


def _evaluation_strategy(mapping: _Mapping, key: str) -> None:
    value = str(mapping.data[key]).lower()
    note = (f"{key} is ignored: personaforge computes the validation loss every train.eval_every steps"
            " (eval_steps maps there; 0 = once per epoch)")
    if value == "no":
        note += "; to skip validation, set data.validation_fraction=0"
    mapping.notes.append(note)


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
    source = "dataset_path + dataset_pattern" if folder is not None else "dataset_pattern"
    base = Path(folder or ".")
    matches = _pattern_matches(mapping, base, pattern)
    train = next((p for p in matches if p.name == "train.jsonl"), None)
    if train is not None:  # a personaforge dataset folder
        names = ", ".join(p.relative_to(base).as_posix() for p in matches)
        unread = [p.relative_to(base).as_posix() for p in matches
                  if p.parent != train.parent or p.name not in ("train.jsonl", "eval.jsonl")]
        why = f"it matches {names}; personaforge reads train.jsonl and eval.jsonl from that folder"
        path = train.parent.as_posix()
        mapping.put(key, "data.path", path)
        mapping.notes.append(f"{source} '{pattern}' → data.path: {path} ({why}"
                             + (f"; not read: {', '.join(unread)})" if unread else ")"))
        return
    if not GLOB_CHARS & set(pattern) or len(matches) == 1:
        path = (base / pattern).as_posix() if not GLOB_CHARS & set(pattern) else matches[0].as_posix()
        why = "the file it names" if not GLOB_CHARS & set(pattern) else "the one file it matches"
        mapping.put(key, "data.path", path)
        mapping.notes.append(f"{source} '{pattern}' → data.path: {path} ({why})")
    elif matches:
        # The original's standard layout: batch_1.jsonl ... batch_N.jsonl, all of them the training set.
        mapping.put(key, "data.path", base.as_posix())
        mapping.put("dataset_pattern", "data.pattern", pattern)
        shown = ", ".join(p.relative_to(base).as_posix() for p in matches[:6]) + (", ..." if len(matches) > 6 else "")
        mapping.notes.append(f"{source} '{pattern}' → data.path: {base.as_posix()}, data.pattern: '{pattern}' (the"
                             f" training set: {len(matches)} files read in this order, {shown}; errors name file:line)")
    else:
        # Nothing to look at yet (the dataset may be built later): the folder is the likeliest intent, and the
        # dataset check before training says exactly what is missing.
        mapping.put(key, "data.path", base.as_posix())
        mapping.notes.append(f"{source} '{pattern}' → data.path: {base.as_posix()} (nothing matches there yet;"
                             " personaforge reads train.jsonl and eval.jsonl from the folder)")
        return
    _eval_folder(mapping, base)


def _pattern_matches(mapping: _Mapping, base: Path, pattern: str) -> list[Path]:
    if not GLOB_CHARS & set(pattern):
        return []
    try:
        return sorted(p for p in base.glob(pattern) if p.is_file() and base / EVAL_FOLDER not in p.parents)
    except (ValueError, OSError, NotImplementedError) as exc:  # e.g. an absolute pattern
        raise PersonaForgeError(f"{mapping.where('dataset_pattern')}: dataset_pattern '{pattern}' "
                                f"cannot be used ({exc}); give a glob like '*.jsonl'") from None


def _eval_folder(mapping: _Mapping, base: Path) -> None:
    """The original kept its eval set in eval/ beside the training files, where its eval configs point."""
    folder = base / EVAL_FOLDER
    if folder.is_dir():
        mapping.put("dataset_path", "data.eval_path", folder.as_posix())
        mapping.notes.append(f"{folder.as_posix()} → data.eval_path (the eval set, where the original's eval configs"
                             " point; persona eval scores it)")
        return
    mapping.notes.append(
        f"no eval set: {folder.as_posix()} does not exist. The original split 10% of the records off with seed 42;"
        f" personaforge holds out data.validation_fraction ({_default('data.validation_fraction')}) of the training"
        " records, chosen with train.seed, for the validation loss only, and persona eval needs an eval set: put"
        f" the original's eval/eval.jsonl in {folder.as_posix()}, or set data.eval_path")


HANDLERS: dict[str, Callable[[_Mapping, str], None]] = {
    "max_steps": _max_steps,
    "cuda_visible_devices": _cuda_visible_devices,
    "data_source": _data_source,
    "evaluation_strategy": _evaluation_strategy,
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


# Keys only the original's eval configs have: such a file given to persona train is an eval config.
EVAL_CONFIG_KEYS: frozenset[str] = frozenset({"model_path", "metrics_dir", "use_gguf", "gguf_model_path"})


def _check_keys(data: dict, doc: YamlDoc) -> None:
    found = sorted(EVAL_CONFIG_KEYS & set(data))
    if found and "model_name" not in data:
        raise PersonaForgeError(f"{doc.where((found[0],))}: an eval config of the original pipeline ({', '.join(found)}),"
                                f" not a training config; evaluate with it: persona eval --config {doc.source}")
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
    # None of the original's train configs has evaluation settings: say which ones persona eval will use.
    mapping.notes.append(f"the original's train configs set no evaluation: persona eval decodes greedily with"
                         f" repetition_penalty {_default('eval.repetition_penalty'):g} on the answer's tokens, up to"
                         f" {_default('eval.max_new_tokens')} new tokens (eval.KEY=VALUE changes them)")
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
