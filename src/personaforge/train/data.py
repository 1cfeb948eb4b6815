"""Loading a built dataset for training: files in, records out, fingerprints recorded."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.config import DataSection
from personaforge.errors import PersonaForgeError
from personaforge.fileio import display_path, read_records


@dataclass
class DatasetFiles:
    train: list[dict]
    eval: list[dict]
    files: dict[str, str] = field(default_factory=dict)  # display path → sha256
    has_messages: bool = False
    has_plain: bool = False

    @property
    def personas(self) -> list[str]:
        return sorted({r["persona"] for r in self.train if r.get("persona")})

    def fingerprint(self) -> str:
        joined = "".join(f"{name}:{digest}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()


def load_dataset_dir(cfg: DataSection) -> DatasetFiles:
    """A dataset folder (train.jsonl + eval.jsonl) or a single .jsonl file (no eval split)."""
    path = Path(cfg.path)
    if path.is_dir():
        train_file, eval_file = path / "train.jsonl", path / "eval.jsonl"
        if not train_file.exists():
            raise PersonaForgeError(f"data.path: {display_path(path)} has no train.jsonl; build it with persona data build"
                                    f" --out {display_path(path)}")
        train, train_sha = read_records(train_file)
        files = {display_path(train_file): train_sha}
        evaluation: list[dict] = []
        if eval_file.exists():
            evaluation, eval_sha = read_records(eval_file)
            files[display_path(eval_file)] = eval_sha
    elif path.is_file():
        train, sha = read_records(path)
        evaluation, files = [], {display_path(path): sha}
    else:
        raise PersonaForgeError(f"data.path: {cfg.path} does not exist; build a dataset with persona data build"
                                " or point data.path at a folder or .jsonl file")
    if not train:
        raise PersonaForgeError(f"data.path: {cfg.path} has no training records; rebuild it with persona data build"
                                " or point data.path at a dataset with records")
    rows = train + evaluation
    return DatasetFiles(train, evaluation, files,
                        has_messages=all("messages" in r for r in rows),
                        has_plain=all("prompt" in r and "completion" in r for r in rows))


def validation_split(records: list[dict], fraction: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out a seeded slice of training records for validation loss, grouped by source segment."""
    if fraction <= 0 or len(records) < 10:
        return records, []
    # Numeric ids may sit beside string ones (hand-made files): order by type first so sorting cannot fail.
    groups = sorted({r.get("segment") or r.get("id") or str(i) for i, r in enumerate(records)},
                    key=lambda key: (isinstance(key, str), key))
    random.Random(f"validation:{seed}").shuffle(groups)
    held = set(groups[: max(1, round(fraction * len(groups)))])
    train, validation = [], []
    for i, record in enumerate(records):
        key = record.get("segment") or record.get("id") or str(i)
        (validation if key in held else train).append(record)
    return train, validation
