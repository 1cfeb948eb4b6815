"""The config schema: pydantic sections (unknown keys are errors with a did-you-mean) and their validation.

The foundation every stage reads its settings from; it knows nothing of files in other formats (config.original maps
the original pipeline's flat configs onto it, config.load reads YAML and applies overrides)."""

from __future__ import annotations

import difflib
import re
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from personaforge.errors import PersonaForgeError
from personaforge.redaction import is_secret_key
from personaforge.yamlio import YamlDoc


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------- data
RecordType = Literal["extracted", "transformed", "hypothetical", "contrastive", "negative"]
RECORD_TYPES: tuple[str, ...] = typing.get_args(RecordType)

DEFAULT_CONTRASTIVE_QUESTIONS = [
    "What does patience mean in your work?",
    "What was the hardest year you have had, and what did it teach you?",
    "What would you tell a twenty-year-old who wants to do what you do?",
    "How do you know when something you are doing is working?",
    "What do people misunderstand most about your work?",
    "What does an ordinary morning look like for you?",
    "What are you afraid of losing?",
    "Who taught you the most, and what did they teach you?",
    "How do you think about money and your work?",
    "What makes you hopeful?",
    "What mistake taught you the most?",
    "Why do you keep doing this?",
]


class TeacherConfig(Section):
    url: str = Field(description="Base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:11434/v1")
    model: str
    api_key_env: str = Field("PERSONAFORGE_TEACHER_API_KEY",
                             description="the NAME of the environment variable that holds the key, never the key")
    timeout: float = Field(60.0, gt=0)
    retries: int = Field(3, ge=0, le=10)
    temperature: float = Field(0.0, ge=0)
    cache_dir: str | None = None

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        # A key pasted here would be echoed in messages ("set <api_key_env>") and kept in configs.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be the name of an environment variable that holds the key (e.g."
                             " PERSONAFORGE_TEACHER_API_KEY), not the key itself; export the key under that name")
        return value


class DataConfig(Section):
    transcripts: list[str] = Field(default_factory=list)
    personas: list[str] = Field(default_factory=list)
    format: Literal["auto", "tab", "otter", "colon", "rev", "descript", "srt", "vtt", "json", "jsonl", "whisper"] = "auto"
    out: str = "data/default"
    seed: int = 0
    eval_fraction: float = Field(0.12, ge=0, lt=1)
    eval_types: list[RecordType] = Field(default_factory=lambda: ["extracted"])
    context_turns: int = Field(1, ge=0, le=8)
    context_max_words: int = Field(80, ge=10)
    chunk_min_words: int = Field(40, ge=5)
    chunk_max_words: int = Field(120, ge=10)
    min_answer_words: int = Field(4, ge=1)
    transformed: bool = True
    hypothetical_per_topic: int = Field(2, ge=0)
    contrastive_questions: list[str] = Field(default_factory=lambda: list(DEFAULT_CONTRASTIVE_QUESTIONS))
    negatives_per_pair: int = Field(2, ge=0)
    max_leak_ngram: int = Field(8, ge=1)
    redact_others: bool = False
    teacher: TeacherConfig | None = None
    review_file: str | None = Field(None, description="the review decisions file that persona studio writes and every"
                                    " build applies; default: <out>.review.jsonl beside the dataset folder")
    require_review: bool = Field(False, description="keep only the synthesized records (written questions or answers)"
                                 " that a reviewer accepted or edited; verbatim transcript records stay")

    @field_validator("transcripts", "personas", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_chunks(self) -> "DataConfig":
        if self.chunk_min_words >= self.chunk_max_words:
            raise ValueError("chunk_min_words must be smaller than chunk_max_words")
        return self


# -------------------------------------------------------------------------------------------- train
class ModelSection(Section):
    name: str = Field(description="hub id, local folder, gguf:PATH, or an embedded pkg: model")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    quantization: Literal["none", "4bit", "8bit"] = "none"
    attn: Literal["auto", "sdpa", "flash_attention_2", "eager"] = "auto"
    gradient_checkpointing: bool = False
    trust_remote_code: bool = False
    allow_pickle: bool = Field(False, description="load pickle (.bin/.pt) weights, which can run code; --allow-pickle")
    revision: str | None = None


class DataSection(Section):
    path: str = Field(description="a dataset folder (train.jsonl, eval.jsonl), one .jsonl file, or with `pattern` a"
                                  " folder of .jsonl files")
    pattern: str | None = Field(None, description="glob of the training files inside `path`, read in sorted order,"
                                " e.g. '*.jsonl' for the original pipeline's batch_1.jsonl ... batch_N.jsonl")
    eval_path: str | None = Field(None, description="the eval set: a .jsonl file or a folder of them (the original"
                                  " pipeline's data/eval); replaces the eval.jsonl of a dataset folder")
    format: Literal["auto", "prompt_completion", "messages"] = "auto"
    prompt_style: Literal["auto", "plain", "chat"] = "auto"
    max_length: int = Field(512, ge=16)
    validation_fraction: float = Field(0.05, ge=0, lt=0.5)

    @field_validator("pattern")
    @classmethod
    def _relative_glob(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or value.startswith(("/", "\\")) or ".." in Path(value).parts):
            raise ValueError("must be a glob inside data.path, e.g. '*.jsonl'")
        return value


class LoraSection(Section):
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    use_dora: bool = False
    use_rslora: bool = False
    top_layers: int = Field(0, ge=0, description="adapt only the last N decoder layers (0 = all). Backward stops at"
                            " the lowest adapted layer, so a step costs less: on a CPU, a quick run learns more per"
                            " minute (configs/train/demo.yaml)")


class TrainSection(Section):
    epochs: float = Field(3, gt=0)
    max_steps: int = Field(0, ge=0, description="> 0 wins over epochs")
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr: float = Field(2e-4, gt=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    seed: int = 0
    packing: bool = True
    eval_every: int = Field(0, ge=0, description="steps between validation passes; 0 = once per epoch")
    save_every: int = Field(0, ge=0, description="steps between checkpoints; 0 = once per epoch")
    save_total_limit: int = Field(2, ge=1)
    early_stopping_patience: int = Field(0, ge=0, description="validation passes without improvement; 0 = off")
    logging_steps: int = Field(1, ge=1)
    grad_spike_factor: float = Field(50.0, gt=1, description="stop when a grad norm exceeds this × running median")
    threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = all cores")


class EvalSection(Section):
    max_new_tokens: int = Field(160, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    repetition_penalty: float = Field(
        1.2, ge=1.0, description="> 1 makes repeating earlier tokens less likely (HF generate's repetition_penalty;"
        " Ollama's repeat_penalty). Greedy answers without it looped on one sentence on both embedded models, so"
        " 1.2 is the default (README, Evaluation); 1.0 turns it off")
    repetition_penalty_scope: Literal["answer", "prompt_and_answer"] = Field(
        "answer", description="which tokens the penalty counts: the answer's own (default), or also the prompt's"
        " (HF's default). Counting the prompt pushes answers away from the question's and the context's words")
    end_rule: Literal["likelier_than_not", "argmax"] = Field(
        "likelier_than_not", description="greedy decoding only: end an answer only where ending is likelier than"
        " going on (default), or wherever the end token is the single likeliest token (plain greedy, which cut a"
        " fine-tuned persona's answers to three quarters of the person's length or less)")
    batch_size: int = Field(8, ge=1)
    max_samples: int = Field(0, ge=0, description="0 = all")
    seed: int = 0


class OutputSection(Section):
    dir: str = "outputs/runs"
    name: str | None = None


class TrainConfig(Section):
    model: ModelSection
    data: DataSection
    lora: LoraSection = Field(default_factory=LoraSection)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    output: OutputSection = Field(default_factory=OutputSection)


# --------------------------------------------------------------------------------------- machinery
def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _model_at(cls: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = cls.model_fields.get(str(part))
        if field is None:
            return None
        cls = _submodel(field.annotation)
    return cls


def _all_keys(cls: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys = []
    for name, field in cls.model_fields.items():
        keys.append(prefix + (name,))
        sub = _submodel(field.annotation)
        if sub is not None:
            keys.extend(_all_keys(sub, prefix + (name,)))
    return keys


# Names other tools use for our keys.
SYNONYMS = {
    "rank": "r", "lora_r": "r", "lora_alpha": "alpha", "lora_dropout": "dropout", "learning_rate": "lr",
    "num_epochs": "epochs", "num_train_epochs": "epochs", "gradient_accumulation_steps": "grad_accum",
    "per_device_train_batch_size": "batch_size", "lr_scheduler_type": "scheduler", "model_name": "name",
    "torch_dtype": "dtype", "attn_implementation": "attn", "max_seq_length": "max_length",
    "dataset_path": "path", "output_dir": "dir", "seq_len": "max_length",
}


def unknown_key_hint(cls: type[BaseModel], section: tuple[str, ...], key: str) -> str:
    """'did you mean ...' for a key unknown in ``section``: the closest key there, or the section it belongs to."""
    everywhere = _all_keys(cls)
    synonym = SYNONYMS.get(key)
    if synonym is not None:
        owner = next((k for k in everywhere if k[-1] == synonym and k[:-1] == section), None) or next(
            (k for k in everywhere if k[-1] == synonym), None)
        if owner is not None:
            return f"did you mean '{'.'.join(owner)}'?"
    elsewhere = [k for k in everywhere if k[-1] == key and k[:-1] != section]
    if elsewhere:
        target = ".".join(elsewhere[0])
        where = ".".join(elsewhere[0][:-1]) or "the top level"
        return f"'{key}' belongs in section '{where}' ({target})"
    here = _model_at(cls, section)
    names = list(here.model_fields) if here else []
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.5)
    if close:
        return f"did you mean '{'.'.join(section + (close[0],))}'?"
    leaves = [k for k in everywhere if _model_at(cls, k) is None]
    close = difflib.get_close_matches(key, [k[-1] for k in leaves], n=1, cutoff=0.75)
    if close:
        full = next(k for k in leaves if k[-1] == close[0])
        return f"did you mean '{'.'.join(full)}'?"
    return f"known keys here: {', '.join(names)}" if names else "remove it"


def validate_config(cls: type[BaseModel], data: Any, doc: YamlDoc | None = None, label: str = "config") -> Any:
    """Build ``cls`` from ``data``; the first problem becomes a one-line PersonaForgeError naming file:line and key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        where = doc.where() if doc else label
        raise PersonaForgeError(f"{where}: expected a mapping of keys (key: value), got {type(data).__name__}")
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(p) for p in error["loc"])
        where = doc.where(loc) if doc else label
        key = ".".join(loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            hint = unknown_key_hint(cls, tuple(p for p in loc[:-1] if not p.isdigit()), loc[-1])
            raise PersonaForgeError(f"{where}: unknown key '{key}'; {hint}") from None
        if error["type"] == "missing":
            raise PersonaForgeError(f"{where}: missing required key '{key}'; add it") from None
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 60 else ""
        if loc and is_secret_key(loc[-1]):
            shown = ""  # never echo what may be a credential
        raise PersonaForgeError(f"{where}: key '{key}': {message}{shown}") from None
