"""Loading a dataset for training: files in, records out, fingerprints recorded.

Three layouts: a dataset folder (train.jsonl + eval.jsonl, as `persona data build` writes it), one .jsonl file,
or the original pipeline's (data.pattern: batch_1.jsonl ... batch_N.jsonl read in order as the training set,
data.eval_path: its eval/ folder). Records in the original's prompt/completion-only format get the persona their
prompt ends with (`...\\n\\nTilda:`) and, when the prompt parses exactly, the same turns as messages, so every later
stage treats them like built records. Each record's file:line is kept for errors.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.config import DataSection
from personaforge.errors import PersonaForgeError
from personaforge.fileio import JSONL_TEXT, decode_text, display_path, iter_jsonl, read_bytes
from personaforge.prompting import chat_messages


@dataclass
class DatasetFiles:
    train: list[dict]
    eval: list[dict]
    files: dict[str, str] = field(default_factory=dict)  # display path → sha256
    has_messages: bool = False
    has_plain: bool = False
    origins: dict[int, str] = field(default_factory=dict, repr=False)  # id(record) → "FILE:LINE"

    @property
    def personas(self) -> list[str]:
        return sorted({r["persona"] for r in self.train if r.get("persona")})

    def fingerprint(self) -> str:
        joined = "".join(f"{name}:{digest}\n" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(joined.encode()).hexdigest()

    def where(self, record: dict) -> str:
        """FILE:LINE of a record read by this loader (its id otherwise), for error messages."""
        return self.origins.get(id(record)) or f"record {record.get('id')}"


def jsonl_files(path: Path, what: str) -> list[Path]:
    """A .jsonl file, or the .jsonl files directly inside a folder, sorted by name."""
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if not files:
            raise PersonaForgeError(f"{what}: {display_path(path)} has no .jsonl files; point it at a .jsonl file or a"
                                    " folder of them")
        return files
    raise PersonaForgeError(f"{what}: {display_path(path)} does not exist; point it at a .jsonl file or a folder of them")


def _pattern_files(folder: Path, pattern: str, exclude: Path | None) -> list[Path]:
    if not folder.is_dir():
        raise PersonaForgeError(f"data.path: {display_path(folder)} is not a folder; data.pattern '{pattern}' globs"
                                " inside a folder")
    try:
        matches = sorted(p for p in folder.glob(pattern) if p.is_file())
    except (ValueError, OSError, NotImplementedError) as exc:
        raise PersonaForgeError(f"data.pattern '{pattern}' cannot be used ({exc}); give a glob like '*.jsonl'") from None
    if exclude is not None:  # the eval set never doubles as training data, whatever the pattern says
        exclude = exclude.resolve()
        matches = [p for p in matches if p.resolve() != exclude and exclude not in p.resolve().parents]
    if not matches:
        raise PersonaForgeError(f"data.pattern '{pattern}' matches no file in {display_path(folder)}; check the"
                                " pattern (e.g. '*.jsonl') or data.path")
    return matches


def _record_name(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.name


def enrich_record(record: dict) -> None:
    """A prompt/completion-only record (the original pipeline's) gets its persona from the turn its prompt ends
    with, and messages with the same turns when they render back to exactly its prompt and completion."""
    from personaforge.prompting import parse_plain_record

    if not isinstance(record.get("prompt"), str) or ("messages" in record and record.get("persona")):
        return
    parsed = parse_plain_record(record["prompt"], record.get("completion"))
    if parsed is None:
        return
    if not record.get("persona"):
        record["persona"] = parsed.persona
    if "messages" not in record and parsed.exact and record["persona"] == parsed.persona:
        c = parsed.conversation
        record["messages"] = chat_messages(c.system, c.question, c.history, c.answer)


def read_record_files(files: list[Path], root: Path) -> tuple[list[dict], dict[int, str], dict[str, str]]:
    """Records of several .jsonl files in order, each checked like `persona data validate` (errors name FILE:LINE).

    Returns (records, origins: id(record) → "FILE:LINE", files: display path → sha256). A record without an id
    gets "<file relative to root>:<line>", which stays the same wherever the command runs.
    """
    from personaforge.dataset.validate import record_problem

    rows: list[dict] = []
    origins: dict[int, str] = {}
    shas: dict[str, str] = {}
    for path in files:
        source = display_path(path)
        data = read_bytes(path)
        name = _record_name(path, root)
        for number, row in iter_jsonl(decode_text(data, source, JSONL_TEXT).text, source,
                                     f"run persona data validate {source}"):
            problem = record_problem(row)
            if problem:
                raise PersonaForgeError(f"{source}:{number}: {problem}; run persona data validate {source}")
            if row.get("id") is None:
                row["id"] = f"{name}:{number}"
            enrich_record(row)
            origins[id(row)] = f"{source}:{number}"
            rows.append(row)
        shas[source] = hashlib.sha256(data).hexdigest()
    return rows, origins, shas


def load_dataset_dir(cfg: DataSection) -> DatasetFiles:
    """A dataset folder (train.jsonl + eval.jsonl), a single .jsonl file (no eval split), or data.pattern's files;
    data.eval_path, when set, is the eval set."""
    path = Path(cfg.path)
    eval_path = Path(cfg.eval_path) if cfg.eval_path else None
    eval_files: list[Path] = []
    if cfg.pattern:
        train_files = _pattern_files(path, cfg.pattern, eval_path)
    elif path.is_dir():
        train_file, eval_file = path / "train.jsonl", path / "eval.jsonl"
        if not train_file.exists():
            others = sorted(p.name for p in path.glob("*.jsonl"))[:3]
            hint = (f"; to train on its .jsonl files ({', '.join(others)}, ...) set data.pattern: '*.jsonl'"
                    if others else "")
            raise PersonaForgeError(f"data.path: {display_path(path)} has no train.jsonl; build it with persona data build"
                                    f" --out {display_path(path)}{hint}")
        train_files = [train_file]
        if eval_file.exists() and eval_path is None:
            eval_files = [eval_file]
    elif path.is_file():
        train_files = [path]
    else:
        raise PersonaForgeError(f"data.path: {cfg.path} does not exist; build a dataset with persona data build"
                                " or point data.path at a folder or .jsonl file")
    if eval_path is not None:
        eval_files = jsonl_files(eval_path, "data.eval_path")
    root = path if path.is_dir() else path.parent
    train, origins, files = read_record_files(train_files, root)
    evaluation, eval_origins, eval_shas = read_record_files(eval_files, root)
    origins.update(eval_origins)
    files.update(eval_shas)
    if not train:
        raise PersonaForgeError(f"data.path: {cfg.path} has no training records; rebuild it with persona data build"
                                " or point data.path at a dataset with records")
    rows = train + evaluation
    return DatasetFiles(train, evaluation, files,
                        has_messages=all("messages" in r for r in rows),
                        has_plain=all("prompt" in r and "completion" in r for r in rows), origins=origins)


def dataset_present(cfg: DataSection) -> bool:
    """Whether the files data.path names are there (else `persona run` builds the dataset first)."""
    path = Path(cfg.path)
    if cfg.pattern:
        return path.is_dir()
    return (path / "train.jsonl").exists() or path.is_file()


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
