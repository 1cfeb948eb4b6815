"""What a model name says: its family, size and whether it is an instruct model (for the base-vs-instruct table)."""

from __future__ import annotations

import re

_FAMILIES: tuple[tuple[str, str], ...] = (
    # (regex on the lower-cased model name, family; "{v}" takes the version group)
    (r"smollm[-_ ]?(\d*)", "smollm{v}"),
    (r"llama[-_ ]?(\d+(?:\.\d+)?)?", "llama{v}"),
    (r"mixtral", "mixtral"),
    (r"mistral", "mistral"),
    (r"qwen[-_ ]?(\d+(?:\.\d+)?)?", "qwen{v}"),
    (r"gemma[-_ ]?(\d+)?", "gemma{v}"),
    (r"phi[-_ ]?(\d+(?:\.\d+)?)?", "phi{v}"),
    (r"falcon[-_ ]?(\d+)?", "falcon{v}"),
)
_SIZE = re.compile(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)([mb])(?![a-z0-9])")
_INSTRUCT_TOKENS = {"it", "chat"}


def parse_family(model: str) -> str | None:
    """'meta-llama/Meta-Llama-3.1-8B-Instruct' → 'llama3.1', 'Qwen/Qwen2.5-14B' → 'qwen2.5'; None if unknown."""
    name = model.lower()
    for pattern, family in _FAMILIES:
        matches = list(re.finditer(pattern, name))
        if matches:
            # "meta-llama/Meta-Llama-3-8B": the org name has no version, the model name does.
            versions = [m.group(1) for m in matches if m.groups() and m.group(1)]
            return family.format(v=versions[0] if versions else "")
    return None


def parse_size(model: str) -> str | None:
    """The size the model is called by: 'SmolLM2-135M' → '135M', 'Llama-3-8B' → '8B'; None if absent."""
    match = _SIZE.search(model.lower())
    return f"{match.group(1)}{match.group(2).upper()}" if match else None


def human_size(params: int) -> str:
    """134_515_008 → '135M', 8_030_261_248 → '8B', 1_711_376_384 → '1.7B'."""
    if params >= 1e9:
        return f"{params / 1e9:.1f}".removesuffix(".0") + "B"
    if params >= 1e6:
        return f"{params / 1e6:.0f}M"
    return f"{params / 1e3:.0f}K"


def parse_instruct(model: str) -> bool:
    """Instruct/chat-tuned by its name: '-Instruct', '-it', '-chat'; anything else counts as a base model."""
    tokens = re.split(r"[-_/.: ]+", model.lower())
    return "instruct" in model.lower() or any(token in _INSTRUCT_TOKENS for token in tokens)
