"""Property tests for the parsers users feed by hand: JSONL record files, persona cards, configs and key=value
overrides. Arbitrary input either parses or raises PersonaForgeError (one line), never another exception."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from personaforge.config import (
    DataConfig,
    TrainConfig,
    apply_overrides,
    load_data_config,
    load_train_config,
    parse_override,
    validate_config,
)
from personaforge.dataset.validate import read_records, record_problem, validate_file
from personaforge.errors import PersonaForgeError
from personaforge.fileio import dumps_jsonl, iter_jsonl
from personaforge.personas import PersonaCard, load_cards

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory(prefix="pf-fuzz-") as folder:
        yield Path(folder)


def one_line_error(exc: PersonaForgeError) -> None:
    assert str(exc) and "\n" not in str(exc)


def parsed_or_refused(load):
    """``load()``'s result, or None when it refused with a one-line PersonaForgeError (any other exception fails)."""
    try:
        return load()
    except PersonaForgeError as exc:
        one_line_error(exc)
        return None


# ------------------------------------------------------------------------------------------------ values
# Text that includes every character str.splitlines() treats as a line break, which JSON leaves unescaped.
BREAKERS = ["\u2028", "\u2029", "\x85", "\x1c", "\x0b", "\r", "\t"]
text_value = st.one_of(st.text(max_size=12), st.sampled_from(["", " ", *BREAKERS, "Ada", "user", "assistant"]))
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text_value)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text_value, inner, max_size=4)), max_leaves=12)
message = st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant", "bot", 3]),
                                 "content": st.one_of(text_value, st.integers())})
record = st.one_of(
    st.fixed_dictionaries({"prompt": text_value, "completion": text_value},
                          optional={"persona": st.one_of(text_value, json_values), "id": json_values,
                                    "type": json_values, "segment": json_values}),
    st.fixed_dictionaries({"messages": st.lists(message, max_size=4)},
                          optional={"persona": json_values, "prompt": json_values}),
    st.dictionaries(st.sampled_from(["prompt", "completion", "messages", "persona", "id", "x"]), json_values,
                    max_size=4),
    json_values,
)
GARBAGE = ["{", "}", "[", "]", '"', ":", ",", "\n", "\r\n", "\ufeff", "\x00", "1e999", "9" * 5000, "[" * 3000,
           "NaN", "null", "true", '{"prompt": ', '"completion": "x"}', "\\u00", "\\ud800"]
jsonl_text = st.one_of(
    st.lists(record, max_size=5).map(dumps_jsonl),
    st.lists(st.one_of(record.map(lambda r: json.dumps(r, ensure_ascii=False)), st.sampled_from(GARBAGE),
                       st.text(max_size=8)), max_size=6).map("\n".join),
)
jsonl_bytes = st.one_of(
    jsonl_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    jsonl_text.map(lambda s: s.encode("cp1252", "ignore")),
    st.binary(max_size=200),
)


# ------------------------------------------------------------------------------------------------- JSONL
@SETTINGS
@given(text=jsonl_text)
def test_iter_jsonl_parses_or_names_the_line(text):
    try:
        rows = list(iter_jsonl(text, "x.jsonl", "fix it"))
    except PersonaForgeError as exc:
        one_line_error(exc)
        assert str(exc).startswith("x.jsonl:")
        return
    assert all(isinstance(number, int) and number >= 1 for number, _ in rows)


@SETTINGS
@given(rows=st.lists(record, max_size=6))
def test_jsonl_written_by_the_tool_reads_back_unchanged(rows):
    """dumps_jsonl keeps U+2028 and friends raw (ensure_ascii=False): the reader must not split lines on them."""
    parsed = [value for _, value in iter_jsonl(dumps_jsonl([{"v": row} for row in rows]), "x.jsonl", "")]
    assert parsed == [{"v": row} for row in rows]


@SETTINGS
@given(data=jsonl_bytes)
def test_read_records_and_validate_agree_on_arbitrary_files(scratch, data):
    path = scratch / "records.jsonl"
    path.write_bytes(data)
    try:
        rows, digest = read_records(path)
    except PersonaForgeError as exc:
        one_line_error(exc)
        rows = None
    else:
        assert len(digest) == 64 and all(record_problem(row) is None for row in rows)
    try:
        problems, count = validate_file(path)
    except PersonaForgeError as exc:  # unreadable as text at all: both refuse
        one_line_error(exc)
        assert rows is None
        return
    assert all(problem.startswith((f"{path}:", "records.jsonl:")) for problem in problems)
    if rows is None:  # what training refuses, validate reports
        assert problems
    elif rows:
        assert count == len(rows)


# --------------------------------------------------------------------------------------------- YAML files
CARD_KEYS = ["name", "aliases", "role", "description", "speaking_style", "topics", "system_prompt", "markers",
             "deflection", "consent", "source", "personas", "nmae"]
DATA_KEYS = list(DataConfig.model_fields) + ["teacher", "url", "model", "api_key_env", "timeout", "transcript"]
TRAIN_KEYS = [*TrainConfig.model_fields, "name", "path", "dtype", "allow_pickle", "trust_remote_code", "r", "alpha",
              "target_modules", "epochs", "max_steps", "lr", "dir", "max_length", "num_train_epochs", "model_name",
              "learning_rate", "dataset_path", "bf16", "fp16", "load_in_4bit", "per_device_train_batch_size"]


def yaml_docs(keys: list[str]) -> st.SearchStrategy[str]:
    leaf = st.one_of(scalars, st.sampled_from(["persona", "interviewer", "auto", "float32", "4bit", "all-linear",
                                               "-1", "1e-3", "0.5", "yes", "{x}"]))
    tree = st.recursive(leaf, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(keys), inner, max_size=4)), max_leaves=15)
    dumped = tree.map(lambda value: yaml.safe_dump(value, allow_unicode=True))
    fragments = st.lists(st.one_of(st.sampled_from([*keys, ": ", "- ", "\n", "  ", "[", "]", "{", "}", "&a", "*a",
                                                    "!!python/object:os.system", "? ", "|", "---", "%YAML 1.1", "\t",
                                                    "'", '"']),
                                   st.text(max_size=4)), max_size=25).map("".join)
    return st.one_of(dumped, fragments, st.text(max_size=60))


LEAF = st.one_of(scalars, st.sampled_from(["persona", "interviewer", "auto", "float32", "4bit", "all-linear", "chat",
                                           "{topic} and {other}", "{", "-1", "0.5", "data"]),
                 st.lists(text_value, max_size=3))


def section(model: type, required: tuple[str, ...] = ()) -> st.SearchStrategy[dict]:
    """A config section with mostly real keys, right- or wrong-typed values, now and then a stray key."""
    names = [*model.model_fields, "stray_key"]
    return st.fixed_dictionaries({key: LEAF for key in required},
                                 optional={key: LEAF for key in names if key not in required})


def sections(model: type) -> st.SearchStrategy[dict]:
    optional = {}
    required = {}
    for name, field in model.model_fields.items():
        sub = field.annotation if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel) else None
        value = section(sub, tuple(k for k, f in sub.model_fields.items() if f.is_required())) if sub else LEAF
        (required if field.is_required() else optional)[name] = st.one_of(value, LEAF) if sub else value
    return st.fixed_dictionaries(required, optional=optional)


card = section(PersonaCard, ("name",))
structured_cards = st.one_of(st.lists(card, min_size=1, max_size=4), card,
                             st.lists(card, max_size=3).map(lambda cards: {"personas": cards}))
as_yaml = lambda strategy: strategy.map(lambda value: yaml.safe_dump(value, allow_unicode=True))


def _write(scratch: Path, name: str, text: str) -> Path:
    path = scratch / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


@SETTINGS
@given(text=st.one_of(yaml_docs(CARD_KEYS), as_yaml(structured_cards)))
def test_persona_cards_load_or_raise_persona_forge_error(scratch, text):
    cards = parsed_or_refused(lambda: load_cards([_write(scratch, "cards.yaml", text)]))
    if cards is not None:
        assert cards and all(entry.card.name.strip() for entry in cards)
        assert any(entry.card.role == "persona" for entry in cards)


@SETTINGS
@given(text=st.one_of(yaml_docs(DATA_KEYS), as_yaml(sections(DataConfig))))
def test_data_configs_load_or_raise_persona_forge_error(scratch, text):
    loaded = parsed_or_refused(lambda: load_data_config(_write(scratch, "data.yaml", text)))
    assert loaded is None or isinstance(loaded[0], DataConfig)


@SETTINGS
@given(text=st.one_of(yaml_docs(TRAIN_KEYS), as_yaml(sections(TrainConfig))))
def test_train_configs_load_or_raise_persona_forge_error(scratch, text):
    loaded = parsed_or_refused(lambda: load_train_config(_write(scratch, "train.yaml", text)))
    if loaded is not None:
        config, notes = loaded
        assert isinstance(config, TrainConfig) and all(isinstance(note, str) for note in notes)


# ------------------------------------------------------------------------------------------------ overrides
override_key = st.lists(st.sampled_from([*TRAIN_KEYS, "", " ", "x"]), min_size=1, max_size=4).map(".".join)
override_value = st.one_of(st.text(max_size=10), st.sampled_from(["[1", "{a: 1}", "- x", "null", "~", "1e999",
                                                                  "!!binary x", "&a b", "*a", "'", "0x10"]))
overrides = st.lists(st.one_of(st.builds(lambda k, v: f"{k}={v}", override_key, override_value),
                               st.text(max_size=12)), max_size=4)
BASE = {"model": {"name": "m"}, "data": {"path": "d"}}


@SETTINGS
@given(texts=overrides)
def test_overrides_apply_or_raise_persona_forge_error(texts):
    paths = [parsed_or_refused(lambda text=text: parse_override(text)) for text in texts]
    assert all(not parsed or (parsed[0] and all(isinstance(p, str) for p in parsed[0])) for parsed in paths)
    config = parsed_or_refused(lambda: validate_config(TrainConfig, apply_overrides(BASE, texts), label="overrides"))
    assert config is None or isinstance(config, TrainConfig)


@SETTINGS
@given(texts=overrides)
def test_overrides_on_a_config_file_load_or_raise_persona_forge_error(scratch, texts):
    path = _write(scratch, "base.yaml", yaml.safe_dump(BASE))
    loaded = parsed_or_refused(lambda: load_train_config(path, texts))
    assert loaded is None or isinstance(loaded[0], TrainConfig)
    loaded = parsed_or_refused(lambda: load_data_config(None, texts))
    assert loaded is None or isinstance(loaded[0], DataConfig)
