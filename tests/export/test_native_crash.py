"""A crash inside llama.cpp (or any native child) never takes `persona export` down without a clear line.

No AMX machine is needed: a stand-in `llama_cpp` package, put first on PYTHONPATH, is the real llama-cpp-python
with `Llama.eval` replaced by one that kills its process with SIGSEGV — on every call, or only when the weights
were loaded repacked (the way llama.cpp issue 20824 crashes on Intel AMX CPUs).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from personaforge.export import parity
from personaforge.export.llama_worker import LlamaJob
from personaforge.export.native import NativeCrash, run_child
from tests.conftest import REPO, run_persona
from tests.export.conftest import copy_run

CRASHING_LLAMA_CPP = '''\
"""Test stand-in: the real llama_cpp, but Llama.eval segfaults (mode from PERSONAFORGE_TEST_LLAMA_CRASH)."""
import importlib.util, os, signal, sys

_real = os.environ["PERSONAFORGE_TEST_REAL_LLAMA_CPP"]
_spec = importlib.util.spec_from_file_location("llama_cpp", os.path.join(_real, "__init__.py"),
                                               submodule_search_locations=[_real])
_module = importlib.util.module_from_spec(_spec)
sys.modules["llama_cpp"] = _module  # the import system returns what sys.modules holds after this file runs
_spec.loader.exec_module(_module)
_Llama = _module.Llama


class CrashingLlama(_Llama):
    def eval(self, tokens):
        mode = os.environ["PERSONAFORGE_TEST_LLAMA_CRASH"]
        if mode == "always" or (mode == "repacked" and self.model_params.use_extra_bufts):
            os.kill(os.getpid(), signal.SIGSEGV)
        return super().eval(tokens)


_module.Llama = CrashingLlama
'''


def _crashing_env(tmp_path: Path, mode: str) -> dict[str, str]:
    import llama_cpp

    shadow = tmp_path / "shadow" / "llama_cpp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text(CRASHING_LLAMA_CPP)
    return {"PYTHONPATH": f"{shadow.parent}{os.pathsep}{REPO / 'src'}",
            "PERSONAFORGE_TEST_REAL_LLAMA_CPP": str(Path(llama_cpp.__file__).parent),
            "PERSONAFORGE_TEST_LLAMA_CRASH": mode}


def test_a_child_killed_by_sigsegv_becomes_one_clear_error_with_its_stack_kept(tmp_path):
    log = tmp_path / "child.log"
    command = [sys.executable, "-c", "import os, signal; print('loading'); os.kill(os.getpid(), signal.SIGSEGV)"]
    with pytest.raises(NativeCrash) as caught:
        run_child(command, "llama.cpp", log)
    message = str(caught.value)
    assert caught.value.signal == "SIGSEGV" and "\n" not in message
    assert message.startswith("llama.cpp crashed with SIGSEGV (a crash inside native code)") and "child.log" in message
    text = log.read_text()
    assert "loading" in text and "Fatal Python error: Segmentation fault" in text  # faulthandler's stack


def test_a_child_that_exits_with_an_error_is_not_a_crash(tmp_path):
    result = run_child([sys.executable, "-c", "import sys; print('bad file'); sys.exit(3)"], "x", tmp_path / "x.log")
    assert result.returncode == 3 and "bad file" in (tmp_path / "x.log").read_text()


def test_a_crashed_default_load_is_retried_without_repacking_and_recorded(monkeypatch, tmp_path):
    seen = []

    def fake_run_job(job: LlamaJob, work, log_file, what):
        seen.append(job.repack)
        if job.repack:
            log_file.write_text("segfault in ggml_backend_amx_mul_mat\n")
            raise NativeCrash(what, signal.SIGSEGV, log_file)
        return {"results": [], "system_info": "AMX_INT8 = 1"}

    monkeypatch.setattr(parity, "run_job", fake_run_job)
    warnings: list[str] = []
    log_file = tmp_path / "m.llama-cpp.log"
    answer, load = parity.run_llama_cpp(lambda repack: LlamaJob(tmp_path / "m.gguf", repack=repack), tmp_path,
                                        log_file, warnings.append)
    assert seen == [True, False] and answer["system_info"] == "AMX_INT8 = 1"
    assert load["repack"] is False
    assert load["attempts"] == [{"repack": True, "crashed": "SIGSEGV", "log": "m.llama-cpp.log"},
                                {"repack": False, "crashed": None}]
    assert log_file.read_text().startswith("segfault")  # the crash's log is kept for a bug report
    assert len(warnings) == 1 and "crashed with SIGSEGV" in warnings[0] and "--no-repack" in warnings[0]


def test_two_crashes_give_no_answer_and_both_attempts(monkeypatch, tmp_path):
    def always_crash(job, work, log_file, what):
        raise NativeCrash(what, signal.SIGBUS, log_file)

    monkeypatch.setattr(parity, "run_job", always_crash)
    answer, load = parity.run_llama_cpp(lambda repack: LlamaJob(tmp_path / "m.gguf", repack=repack), tmp_path,
                                        tmp_path / "m.log", lambda _: None)
    assert answer is None and [a["crashed"] for a in load["attempts"]] == ["SIGBUS", "SIGBUS"]


@pytest.fixture()
def llama_cpp_installed():
    pytest.importorskip("llama_cpp")


def test_export_whose_llama_cpp_check_always_crashes_fails_cleanly_and_keeps_the_file(llama_cpp_installed,
                                                                                      chat_run, tmp_path):
    run = copy_run(chat_run, tmp_path)
    result = run_persona("export", "gguf", str(run), "--quant", "f16", env=_crashing_env(tmp_path, "always"))
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Segmentation fault" not in result.stderr and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    error = errors[0]
    assert "llama.cpp crashed with SIGSEGV scoring model-f16.gguf, with and without weight repacking" in error
    assert "model-f16.gguf.failed" in error and "try another --quant" in error
    export = run / "export"
    assert (export / "model-f16.gguf.failed").is_file() and not (export / "model-f16.gguf").exists()
    report = json.loads((export / "model-f16.parity.json").read_text())
    figures = report["backends"]["llama.cpp"]
    assert report["passed"] is False and figures["passed"] is False
    assert [a["crashed"] for a in figures["load"]["attempts"]] == ["SIGSEGV", "SIGSEGV"]
    assert report["backends"]["transformers"]["passed"] is True  # the file itself is fine
    logs = {p.name for p in export.glob("*.log")}
    assert logs == {"model-f16.llama-cpp.log", "model-f16.llama-cpp.no-repack.log"}
    assert "Fatal Python error: Segmentation fault" in (export / "model-f16.llama-cpp.log").read_text()
    assert not list(export.glob(".llama-*")) and not list(export.glob(".gguf-*"))  # no work folders left


def test_export_whose_repacked_load_crashes_passes_without_repacking(llama_cpp_installed, chat_run, tmp_path):
    run = copy_run(chat_run, tmp_path)
    result = run_persona("export", "gguf", str(run), "--quant", "f16", env=_crashing_env(tmp_path, "repacked"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "crashed with SIGSEGV" in result.stderr and "--no-repack" in result.stderr  # the warning line
    export = run / "export"
    assert (export / "model-f16.gguf").is_file()
    figures = json.loads((export / "model-f16.parity.json").read_text())["backends"]["llama.cpp"]
    assert figures["passed"] is True and figures["load"]["repack"] is False
    assert [a["crashed"] for a in figures["load"]["attempts"]] == ["SIGSEGV", None]
    assert "Ollama" in figures["note"]
    assert (export / "model-f16.llama-cpp.log").is_file()  # the crash's log; the good attempt leaves none


FAKE_CRASHING_QUANTIZE = """#!{python}
import os, signal
os.kill(os.getpid(), signal.SIGSEGV)
"""


def test_llama_quantize_dying_by_a_signal_is_one_clear_line(chat_run, tmp_path):
    run = copy_run(chat_run, tmp_path)
    binary = tmp_path / "llama.cpp" / "bin" / "llama-quantize"
    binary.parent.mkdir(parents=True)
    binary.write_text(FAKE_CRASHING_QUANTIZE.format(python=sys.executable))
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    result = run_persona("export", "gguf", str(run), "--quant", "Q4_K_M",
                         env={"LLAMA_CPP_DIR": str(tmp_path / "llama.cpp")})
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "llama-quantize crashed with SIGSEGV" in errors[0], result.stderr
    assert "model-Q4_K_M.quantize.log" in errors[0]
    assert not (run / "export" / "model-Q4_K_M.gguf").exists()


def test_a_llama_cpp_build_that_dies_on_import_is_reported_and_its_checks_skipped(chat_run, tmp_path):
    # A wheel built with -march=native on another CPU dies by SIGILL as its libraries load.
    shadow = tmp_path / "shadow" / "llama_cpp"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    run = copy_run(chat_run, tmp_path)
    result = run_persona("export", "gguf", str(run), "--quant", "f16",
                         env={"PYTHONPATH": f"{shadow.parent}{os.pathsep}{REPO / 'src'}"})
    assert result.returncode == 0, result.stderr[-3000:]  # the transformers check still vouches for the file
    warning = next(line for line in result.stderr.splitlines() if line.startswith("warning: "))
    assert "crashes on import with SIGILL" in warning and "--no-cache-dir --force-reinstall" in warning
    report = json.loads((run / "export" / "model-f16.parity.json").read_text())
    assert "SIGILL" in report["backends"]["llama.cpp"]["skipped"] and report["backends"]["transformers"]["passed"]
