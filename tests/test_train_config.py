"""Training configs: helpful errors, key=value overrides, the original pipeline's flat configs, shipped files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from personaforge.config import TrainConfig, load_train_config
from personaforge.errors import PersonaForgeError
from personaforge.config.original import LEGACY_KEYS, is_legacy_config, map_legacy_config
from personaforge.yamlio import parse_yaml
from tests.conftest import REPO

MINIMAL = "model:\n  name: pkg:smollm2-135m-instruct\ndata:\n  path: data/default\n"


def _write(tmp_path: Path, text: str, name: str = "train.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(PersonaForgeError) as caught:
        load_train_config(path, overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------- sectioned configs
@pytest.mark.parametrize("extra,needle", [
    ("  lr: 0.001\n", ":5: unknown key 'data.lr'; 'lr' belongs in section 'train' (train.lr)"),
    ("  epochs: 2\n", ":5: unknown key 'data.epochs'; 'epochs' belongs in section 'train' (train.epochs)"),
    ("  max_lenght: 256\n", ":5: unknown key 'data.max_lenght'; did you mean 'data.max_length'?"),
    ("  learning_rate: 0.001\n", ":5: unknown key 'data.learning_rate'; did you mean 'train.lr'?"),
    ("  lora_r: 8\n", ":5: unknown key 'data.lora_r'; did you mean 'lora.r'?"),
])
def test_unknown_key_names_line_and_where_it_belongs(tmp_path, extra, needle):
    message = _error(_write(tmp_path, MINIMAL + extra))
    assert f"train.yaml{needle}" in message, message


def test_unknown_section_suggests_the_closest(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + "trian:\n  epochs: 2\n"))
    assert "train.yaml:5: unknown key 'trian'; did you mean 'train'?" in message


@pytest.mark.parametrize("extra,needle", [
    ("train:\n  epochs: many\n", "train.yaml:6: key 'train.epochs'"),
    ("lora:\n  r: 0\n", "train.yaml:6: key 'lora.r': Input should be greater than or equal to 1 (got 0)"),
    ("model2: {}\n", "train.yaml:5: unknown key 'model2'"),
    ("train:\n  scheduler: cosine_with_restarts\n", "train.yaml:6: key 'train.scheduler'"),
    ("model:\n  name: x\n  quantization: 3bit\n", "key 'model.quantization'"),
])
def test_wrong_types_name_file_line_and_key(tmp_path, extra, needle):
    base = MINIMAL if not extra.startswith("model:") else "data:\n  path: data/default\n\n\n"
    message = _error(_write(tmp_path, base + extra))
    assert needle in message, message


def test_missing_required_key(tmp_path):
    message = _error(_write(tmp_path, "model:\n  name: x\n"))
    assert "missing required key 'data'" in message


def test_overrides_parse_yaml_scalars_and_win(tmp_path):
    path = _write(tmp_path, MINIMAL + "train:\n  epochs: 6\n")
    config, notes = load_train_config(path, ["train.epochs=2", "lora.r=8", "lora.alpha=16.5", "train.packing=false",
                                             "model.quantization=4bit", "output.name=try"])
    assert notes == []
    assert (config.train.epochs, config.lora.r, config.lora.alpha) == (2, 8, 16.5)
    assert config.train.packing is False and config.model.quantization == "4bit" and config.output.name == "try"
    assert config.train.lr == 2e-4  # untouched keys keep their defaults


def test_bad_override_is_a_one_line_error(tmp_path):
    path = _write(tmp_path, MINIMAL)
    assert "unknown key 'train.epochz'; did you mean 'train.epochs'?" in _error(path, ["train.epochz=2"])
    assert "expected key=value" in _error(path, ["train.epochs"])
    assert "key 'lora.r'" in _error(path, ["lora.r=big"])


# --------------------------------------------------------------------------- the original pipeline's configs
ORIGINAL = """\
# written for the original pipeline
model_name: meta-llama/Llama-3.1-8B-Instruct
dataset_path: {dataset}
dataset_pattern: "*.jsonl"
epochs: 6
batch_size: 4
gradient_accumulation_steps: 2
lr: 2.0e-4
lora_r: 64
lora_alpha: 128
lora_dropout: 0.05
max_length: 512
cuda_visible_devices: "0"
bf16: true
load_in_4bit: true
gradient_checkpointing: true
"""

ORIGINAL_NOTES = [
    "model_name → model.name",
    "dataset_path + dataset_pattern '*.jsonl' → data.path: {dataset} (it matches eval.jsonl, train.jsonl; "
    "personaforge reads train.jsonl and eval.jsonl from that folder)",
    "epochs → train.epochs",
    "batch_size → train.batch_size",
    "gradient_accumulation_steps → train.grad_accum",
    "lr → train.lr",
    "lora_r → lora.r",
    "lora_alpha → lora.alpha",
    "lora_dropout → lora.dropout",
    "max_length → data.max_length",
    "cuda_visible_devices is ignored: set CUDA_VISIBLE_DEVICES in the environment "
    "(CUDA_VISIBLE_DEVICES=0 persona train ...)",
    "bf16: true → model.dtype: bfloat16",
    "load_in_4bit: true → model.quantization: 4bit (QLoRA: nf4, double quantization)",
    "gradient_checkpointing → model.gradient_checkpointing",
    "data.prompt_style: plain, the original's 'Human: ... <Name>:' prompt for every model "
    "(data.prompt_style=auto uses an instruct model's chat template)",
    "the original padded every sample to max_length; personaforge packs samples without padding "
    "(train.packing: true), so max_length only caps each sample",
    "the original's train configs set no evaluation: persona eval decodes greedily with repetition_penalty 1.2 on "
    "the answer's tokens, up to 160 new tokens (eval.KEY=VALUE changes them)",
]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "original"
    folder.mkdir(parents=True)
    for name in ("train.jsonl", "eval.jsonl"):
        (folder / name).write_text('{"prompt": "q", "completion": " a"}\n', encoding="utf-8")
    return folder


def test_original_config_maps_to_exact_values_and_notes(tmp_path, dataset):
    path = _write(tmp_path, ORIGINAL.format(dataset=dataset.as_posix()))
    config, notes = load_train_config(path)
    expected = TrainConfig.model_validate({
        "model": {"name": "meta-llama/Llama-3.1-8B-Instruct", "dtype": "bfloat16", "quantization": "4bit",
                  "gradient_checkpointing": True},
        "data": {"path": dataset.as_posix(), "max_length": 512, "prompt_style": "plain"},
        "lora": {"r": 64, "alpha": 128, "dropout": 0.05},
        "train": {"epochs": 6, "batch_size": 4, "grad_accum": 2, "lr": 2e-4},
    })
    assert config == expected
    assert notes == [note.format(dataset=dataset.as_posix()) for note in ORIGINAL_NOTES]


def test_original_config_takes_overrides_in_our_names(tmp_path, dataset):
    path = _write(tmp_path, ORIGINAL.format(dataset=dataset.as_posix()))
    config, _ = load_train_config(path, ["train.epochs=1", "model.quantization=none"])
    assert config.train.epochs == 1 and config.model.quantization == "none" and config.lora.r == 64


def test_is_legacy_config():
    assert is_legacy_config({"model_name": "x", "lora_r": 8})
    assert not is_legacy_config({"model": {"name": "x"}, "lora_r": 8})  # a section: ours, with a stray key
    assert not is_legacy_config({"something": 1})


def test_mixed_config_points_flat_keys_to_their_section(tmp_path):
    message = _error(_write(tmp_path, MINIMAL + "lora_r: 8\n"))
    assert "train.yaml:5: unknown key 'lora_r'; did you mean 'lora.r'?" in message


def _legacy(tmp_path: Path, text: str) -> tuple[TrainConfig, list[str]]:
    return load_train_config(_write(tmp_path, "model_name: m\ndataset_path: d\n" + text))


def test_original_unknown_key_names_line_and_suggests(tmp_path):
    message = _error(_write(tmp_path, "model_name: m\ndataset_path: d\nlora_rank: 8\n"))
    assert message == (f"{_display(tmp_path / 'train.yaml')}:3: unknown key 'lora_rank' in a config for the "
                       "original pipeline; did you mean 'lora_r'?")
    message = _error(_write(tmp_path, "model_name: m\n\nwandb_project: x\n"))
    assert ":3: unknown key 'wandb_project'" in message
    assert "write the whole config in personaforge's sections" in message


def _display(path: Path) -> str:
    from personaforge.fileio import display_path

    return display_path(path)


@pytest.mark.parametrize("text,needle", [
    ("bf16: true\nfp16: true\n", ":4: bf16 and fp16 are both true; keep one"),
    ("load_in_8bit: true\nload_in_4bit: true\n", ":4: load_in_4bit and load_in_8bit are both true; keep one"),
    ("epochs: 3\nnum_train_epochs: 4\n", ":4: 'num_train_epochs' and 'epochs' both set train.epochs; keep one"),
    ("lora_r: big\n", ":3: key 'lora_r' (→ lora.r): Input should be a valid integer"),
    ("lora_dropout: 2\n", ":3: key 'lora_dropout' (→ lora.dropout): Input should be less than 1 (got 2)"),
    ("lr_scheduler_type: polynomial\n", ":3: key 'lr_scheduler_type' (→ train.scheduler)"),
    ("bf16: maybe\n", ":3: key 'bf16' must be true or false"),
])
def test_original_conflicts_and_bad_values_name_the_line(tmp_path, text, needle):
    message = _error(_write(tmp_path, "model_name: m\ndataset_path: d\n" + text))
    assert needle in message, message


def test_original_precision_and_steps(tmp_path):
    config, notes = _legacy(tmp_path, "fp16: true\nbf16: false\nmax_steps: -1\nlearning_rate: 1.0e-4\n")
    assert (config.model.dtype, config.train.max_steps, config.train.lr) == ("float16", 0, 1e-4)
    assert "fp16: true → model.dtype: float16 (with loss scaling)" in notes
    assert "max_steps: -1 → train.max_steps: 0 (no step limit; epochs decide)" in notes
    config, notes = _legacy(tmp_path, "bf16: false\nload_in_4bit: false\n")
    assert (config.model.dtype, config.model.quantization) == ("float32", "none")
    assert "bf16: false → model.dtype: float32 (model.dtype=auto picks bfloat16 or float16 on a GPU)" in notes
    config, notes = _legacy(tmp_path, "")
    assert config.model.dtype == "auto"  # nothing said about precision: let personaforge choose
    assert notes[-1] == ("not set, so personaforge's defaults apply: train.epochs: 3, train.batch_size: 4, "
                         "train.grad_accum: 1, train.lr: 0.0002, lora.r: 16, lora.alpha: 32, lora.dropout: 0.05, "
                         "data.max_length: 512")


def test_original_hf_style_names_and_ignored_keys(tmp_path):
    config, notes = _legacy(tmp_path, "num_train_epochs: 2\nper_device_train_batch_size: 2\ntarget_modules: [q_proj]\n"
                                      "lr_scheduler_type: linear\nwarmup_ratio: 0.1\nweight_decay: 0.01\nseed: 7\n"
                                      "logging_steps: 5\nsave_total_limit: 3\noutput_dir: out/x\nload_in_8bit: true\n"
                                      "cuda_visible_devices: [0, 1]\nreport_to: tensorboard\n")
    assert (config.train.epochs, config.train.batch_size, config.lora.target_modules) == (2, 2, ["q_proj"])
    assert (config.train.scheduler, config.train.warmup_ratio, config.train.weight_decay) == ("linear", 0.1, 0.01)
    assert (config.train.seed, config.train.logging_steps, config.train.save_total_limit) == (7, 5, 3)
    assert (config.output.dir, config.model.quantization) == ("out/x", "8bit")
    assert any("CUDA_VISIBLE_DEVICES=0,1" in note for note in notes)
    assert "report_to is ignored: personaforge always writes TensorBoard logs to RUN/logs" in notes


def test_dataset_pattern_one_file_none_or_too_many(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "all.jsonl").write_text("{}\n", encoding="utf-8")
    doc = parse_yaml(f"model_name: m\ndataset_path: {folder}\ndataset_pattern: '*.jsonl'\n", "c.yaml")
    mapped, notes = map_legacy_config(doc.data, doc)
    assert mapped["data"]["path"] == (folder / "all.jsonl").as_posix()
    assert f"→ data.path: {(folder / 'all.jsonl').as_posix()} (the one file it matches)" in notes[1]

    doc = parse_yaml(f"model_name: m\ndataset_path: {folder}\ndataset_pattern: '*.json'\n", "c.yaml")
    mapped, notes = map_legacy_config(doc.data, doc)
    assert mapped["data"]["path"] == folder.as_posix() and "nothing matches there yet" in notes[1]

    # Several files are the original's standard layout (batch_1.jsonl ... batch_N.jsonl): all of them train.
    (folder / "more.jsonl").write_text("{}\n", encoding="utf-8")
    doc = parse_yaml(f"model_name: m\ndataset_path: {folder}\n\ndataset_pattern: '*.jsonl'\n", "c.yaml")
    mapped, notes = map_legacy_config(doc.data, doc)
    assert (mapped["data"]["path"], mapped["data"]["pattern"]) == (folder.as_posix(), "*.jsonl")
    assert "(the training set: 2 files read in this order, all.jsonl, more.jsonl; errors name file:line)" in notes[1]
    assert notes[2].startswith(f"no eval set: {(folder / 'eval').as_posix()} does not exist")

    doc = parse_yaml(f"model_name: m\ndataset_path: {folder}\ndataset_pattern: more.jsonl\n", "c.yaml")
    assert map_legacy_config(doc.data, doc)[0]["data"]["path"] == (folder / "more.jsonl").as_posix()


def test_dataset_pattern_with_extra_files_says_what_is_not_read(tmp_path, dataset):
    (dataset / "filtered.jsonl").write_text("{}\n", encoding="utf-8")
    doc = parse_yaml(f"model_name: m\ndataset_path: {dataset}\ndataset_pattern: '*.jsonl'\n", "c.yaml")
    mapped, notes = map_legacy_config(doc.data, doc)
    assert mapped["data"]["path"] == dataset.as_posix()
    assert notes[1].endswith("; not read: filtered.jsonl)")


LEGACY_EXAMPLES = {
    "model_name": "m", "dataset_path": "d", "dataset_pattern": "x.jsonl", "output_dir": "o", "epochs": "2",
    "num_epochs": "2", "num_train_epochs": "2", "batch_size": "2", "per_device_train_batch_size": "2",
    "gradient_accumulation_steps": "2", "lr": "1.0e-4", "learning_rate": "1.0e-4", "lora_r": "8", "lora_alpha": "16",
    "lora_dropout": "0.1", "lora_target_modules": "[q_proj]", "target_modules": "all-linear", "max_length": "256",
    "max_seq_length": "256", "cuda_visible_devices": "0", "bf16": "true", "fp16": "true", "load_in_4bit": "true",
    "load_in_8bit": "true", "gradient_checkpointing": "true", "warmup_ratio": "0.1", "weight_decay": "0.1",
    "seed": "1", "logging_steps": "2", "save_total_limit": "1", "lr_scheduler_type": "linear", "max_steps": "5",
    "max_grad_norm": "0.5", "eval_steps": "10", "save_steps": "10", "early_stopping_patience": "2",
    "trust_remote_code": "true", "attn_implementation": "eager", "report_to": "none", "logging_dir": "l",
    # keys that tuned only the original's machinery (every one of its configs has them): accepted with a note
    "tokenized_path": "t", "use_tokenized": "false", "data_format": "prompt_completion", "data_source": "{type: local}",
    "logging_strategy": "steps", "evaluation_strategy": "steps", "dataloader_num_workers": "4",
    "dataloader_prefetch_factor": "2",
}


@pytest.mark.parametrize("key", sorted(LEGACY_EXAMPLES))
def test_every_legacy_key_maps_or_is_explained(tmp_path, key):
    # A key listed as legacy but with no handler would crash instead of mapping.
    assert set(LEGACY_EXAMPLES) == LEGACY_KEYS
    base = {"model_name": "m", "dataset_path": "d", key: LEGACY_EXAMPLES[key]}
    config, notes = load_train_config(_write(tmp_path, "".join(f"{k}: {v}\n" for k, v in base.items())))
    assert any(note.startswith(key) or f" {key}" in note for note in notes), notes


# ------------------------------------------------------------------------------------------ shipped files
TRAIN_CONFIGS = sorted((REPO / "configs" / "train").glob("*.yaml"))
LINEUP = {
    "llama3_8b": "meta-llama/Meta-Llama-3-8B", "llama3_8b_instruct": "meta-llama/Meta-Llama-3-8B-Instruct",
    "llama3.1_8b_instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "llama3.2_3b_instruct": "meta-llama/Llama-3.2-3B-Instruct", "mistral_7b": "mistralai/Mistral-7B-v0.3",
    "mistral_7b_instruct": "mistralai/Mistral-7B-Instruct-v0.3", "qwen2.5_14b": "Qwen/Qwen2.5-14B",
    "qwen2.5_14b_instruct": "Qwen/Qwen2.5-14B-Instruct", "gemma3_27b": "google/gemma-3-27b-it",
    "qwen3_32b": "Qwen/Qwen3-32B",
    # the original's "test latest models" step
    "llama3.1_8b": "meta-llama/Llama-3.1-8B", "mistral_nemo_12b": "mistralai/Mistral-Nemo-Base-2407",
    "mistral_nemo_12b_instruct": "mistralai/Mistral-Nemo-Instruct-2407", "qwen3_14b": "Qwen/Qwen3-14B-Base",
    "qwen3_14b_instruct": "Qwen/Qwen3-14B",
}
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_the_demo_data_config_is_the_default_with_a_larger_eval_split():
    """make demo builds configs/data/demo.yaml into the folder configs/train/demo.yaml trains on; the two data
    configs differ only where the demo needs it, so the demo stays a demo of the default build."""
    default = yaml.safe_load((REPO / "configs/data/default.yaml").read_text(encoding="utf-8"))
    demo = yaml.safe_load((REPO / "configs/data/demo.yaml").read_text(encoding="utf-8"))
    differing = {key for key in default.keys() | demo.keys() if default.get(key) != demo.get(key)}
    assert differing == {"out", "eval_fraction"}
    assert demo["eval_fraction"] > default["eval_fraction"]
    assert demo["out"] == load_train_config(REPO / "configs/train/demo.yaml")[0].data.path
    assert "configs/data/demo.yaml" in (REPO / "Makefile").read_text(encoding="utf-8")


def test_the_whole_lineup_is_shipped():
    names = {path.stem for path in TRAIN_CONFIGS}
    assert names == set(LINEUP) | {"smollm2_135m_instruct", "gemma3_270m", "demo"}


@pytest.mark.parametrize("path", TRAIN_CONFIGS, ids=[p.stem for p in TRAIN_CONFIGS])
def test_shipped_train_config_loads(path):
    assert path.read_text(encoding="utf-8").startswith("# ")  # says what it is and what it needs
    config, notes = load_train_config(path)
    assert notes == []
    assert config.data.path == ("data/demo" if path.stem == "demo" else "data/default")
    assert config.output.dir == ("outputs/demo/runs" if path.stem == "demo" else "outputs/runs")
    assert config.lora.target_modules == ALL_PROJECTIONS
    if path.stem in LINEUP:
        assert config.model.name == LINEUP[path.stem]
        assert (config.lora.r, config.lora.alpha, config.lora.dropout) == (64, 128, 0.05)
        assert (config.train.epochs, config.train.lr, config.data.max_length) == (6, 2e-4, 512)
        assert config.train.batch_size * config.train.grad_accum == 8
        big = any(size in path.stem for size in ("12b", "14b", "27b", "32b"))
        assert config.model.gradient_checkpointing == big and (config.train.batch_size < 4) == big
        assert (config.model.quantization == "4bit") == (path.stem in ("gemma3_27b", "qwen3_32b"))


def test_cpu_configs():
    smol, _ = load_train_config(REPO / "configs" / "train" / "smollm2_135m_instruct.yaml")
    assert smol.model.name == "pkg:smollm2-135m-instruct" and (smol.lora.r, smol.lora.alpha) == (16, 32)
    assert (smol.train.epochs, smol.train.batch_size, smol.data.max_length) == (2, 8, 384)
    assert smol.train.packing and smol.eval.max_new_tokens == 128
    gemma, _ = load_train_config(REPO / "configs" / "train" / "gemma3_270m.yaml")
    assert gemma.model.name == "pkg:gemma3-270m" and gemma.data.prompt_style == "plain"


ACCELERATE_CONFIGS = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))


def test_accelerate_configs_are_shipped():
    assert {p.stem for p in ACCELERATE_CONFIGS} == {"ddp", "fsdp", "deepspeed_zero2", "deepspeed_zero3", "cpu_ddp"}
    readme = (REPO / "configs" / "accelerate" / "README.md").read_text(encoding="utf-8")
    for path in ACCELERATE_CONFIGS:
        assert f"--config_file configs/accelerate/{path.name} -m personaforge train configs/train/" in readme


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=[p.stem for p in ACCELERATE_CONFIGS])
def test_accelerate_config_loads_with_accelerate(path):
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    config = load_config_from_file(str(path))  # rejects unknown top-level keys
    expected = {"ddp": "MULTI_GPU", "cpu_ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero2": "DEEPSPEED",
                "deepspeed_zero3": "DEEPSPEED"}[path.stem]
    assert config.distributed_type.value == expected and config.num_processes == 2
    assert config.mixed_precision == "no"  # precision is model.dtype's job
    # accelerate does not check the nested sections; each key there must be a `launch` option or it is ignored.
    parser = launch_command_parser()
    options = {action.dest for action in parser._actions}
    nested = {**config.fsdp_config, **config.deepspeed_config}
    assert not set(nested) - options
    assert "gradient_accumulation_steps" not in nested  # DeepSpeed must take it from train.grad_accum
    args, _, _ = _validate_launch_command(parser.parse_args(["--config_file", str(path), "script.py"]))
    assert args.num_processes == 2
    if path.stem == "fsdp":
        assert (args.use_fsdp, str(args.fsdp_version)) == (True, "2")
    if path.stem.startswith("deepspeed"):
        assert args.use_deepspeed and args.zero_stage == int(path.stem[-1])


PROBE = """\
import sys
from pathlib import Path

import torch
from accelerate import Accelerator

accelerator = Accelerator(cpu=True)  # what personaforge asks for when there is no GPU
total = accelerator.reduce(torch.tensor([accelerator.process_index + 1.0]), reduction="sum")
Path(sys.argv[1], f"rank{accelerator.process_index}.txt").write_text(
    f"{accelerator.num_processes} {accelerator.distributed_type.value} {accelerator.state.backend} {total.item():g}")
# Without this, gloo sometimes aborts at exit ("terminate called without an active exception").
accelerator.end_training()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_cpu_ddp_config_starts_two_gloo_processes(tmp_path):
    # The reason cpu_ddp.yaml exists: `accelerate launch --cpu --num_processes 2` starts only one process.
    pytest.importorskip("accelerate")
    probe = _write(tmp_path, PROBE, "probe.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                             str(REPO / "configs" / "accelerate" / "cpu_ddp.yaml"), "--main_process_port",
                             str(_free_port()), str(probe), str(tmp_path)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = sorted(tmp_path.glob("rank*.txt"))
    assert [p.name for p in ranks] == ["rank0.txt", "rank1.txt"]
    assert {p.read_text() for p in ranks} == {"2 MULTI_CPU gloo 3"}  # two workers, one all-reduce over gloo
