"""The bad-input matrix: every command, fed what users get wrong, answers with exit 2 and ONE `error:` line that
names the file/line/key and what to do: no traceback, nothing new on disk, earlier outputs byte-identical.

One row per case. Most rows run `personaforge.cli.main` in this process (a fresh interpreter costs seconds
here); rows marked `process=True` run the real `persona` process, so the exit status and stderr are checked
exactly as a shell sees them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from personaforge.config import DataConfig
from personaforge.dataset.build import build_dataset
from personaforge.train.run import Run
from tests.conftest import ADA, BEN, CARDS, assert_user_error, run_persona, tab_transcript
from tests.reliability.conftest import run_in_process, snapshot

TRAIN = """\
model:
  name: {model}
data:
  path: {data}
  max_length: 256
  validation_fraction: 0.0
lora: {r: 4, alpha: 8, dropout: 0.0}
train: {max_steps: 1, batch_size: 4, threads: 1, seed: 0}
eval: {max_new_tokens: 4, batch_size: 8}
output:
  dir: {runs}
"""
DATA = "transcripts: [{ws}/t]\npersonas: [{ws}/cards.yaml]\nout: {case}/out\n"
RECORD = '{"prompt": "You are Ada.\\n\\nHuman: hi\\n\\nAda:", "completion": " hello", "persona": "Ada Bell"}\n'
ALIAS_CLASH = "- name: Ada Bell\n  aliases: [Ada, Shared]\n- name: Ben Ortiz\n  aliases: [Ben, shared]\n"


def train_config(**sections: str) -> str:
    """TRAIN with some lines replaced, e.g. train_config(model="name: x") swaps the model block's first line."""
    text = TRAIN
    for key, line in sections.items():
        start = text.index(f"{key}:")
        end = text.index("\n", text.index("\n", start) + 1) if key in ("model", "output") else text.index("\n", start)
        text = text[:start] + line + text[end:]
    return text


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    needles: tuple[str, ...]          # each must appear in the one `error:` line
    files: dict[str, str | bytes] = field(default_factory=dict)  # written under {case}/ before the snapshot
    prepare: Callable[[dict[str, str]], None] | None = None     # more setup, before the snapshot
    patch: Callable[[pytest.MonkeyPatch], None] | None = None   # in-process only
    process: bool = False


def _copy_run(paths: dict[str, str], name: str = "run") -> Path:
    target = Path(paths["case"]) / name
    shutil.copytree(paths["good"], target, symlinks=True)
    return target


def _changed_dataset(paths: dict[str, str]) -> None:
    """The finished run, now pointed at a dataset whose eval file lost a record (another split)."""
    run = _copy_run(paths)
    other = Path(paths["case"]) / "data2"
    shutil.copytree(paths["data"], other)
    lines = (other / "eval.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (other / "eval.jsonl").write_text("".join(lines[:-1]), encoding="utf-8")
    config = run / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(paths["data"], str(other)), encoding="utf-8")


def _corrupt_run_config(paths: dict[str, str]) -> None:
    config = _copy_run(paths) / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8") + "\nlora_rank: 4\n", encoding="utf-8")


def _running_run(paths: dict[str, str]) -> None:
    folder = Path(paths["case"]) / "runs" / "busy"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("model: {name: x}\n", encoding="utf-8")
    # this test process is alive, so the run is really "running", not stale
    (folder / "status.json").write_text(json.dumps({"status": "running", "pid": os.getpid(),
                                                    "host": socket.gethostname()}), encoding="utf-8")


def _no_disk_space(monkeypatch: pytest.MonkeyPatch) -> None:
    from personaforge import merge

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(merge.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 1000, 1000))


BUILD = ("data", "build", "-p", "{ws}/cards.yaml", "--out", "{case}/out")

CASES = [
    # ---------------------------------------------------------------------------------------------- data build
    Case("build-transcript-malformed-jsonl", ("data", "build", "-t", "{case}/t", *BUILD[2:]),
         ("t/bad.jsonl:2", "invalid JSON", "one object per line"),
         {"t/bad.jsonl": '{"speaker": "Ada", "text": "hi"}\n{"speaker": \n'}),
    Case("build-transcript-non-utf8", ("data", "build", "-t", "{case}/t", *BUILD[2:]),
         ("t/latin.txt:2", "cannot decode byte 0x81", "re-save the file as UTF-8"),
         {"t/latin.txt": b"Ada\tcaf\xc3\n\x81\x8d\n"}),
    Case("build-transcript-binary", ("data", "build", "-t", "{case}/t", *BUILD[2:]),
         ("t/image.txt:2", "binary file", "give a text file"), {"t/image.txt": b"Ada\thi\n\x00\x01\x02"},
         process=True),
    Case("build-transcript-empty", ("data", "build", "-t", "{case}/t", *BUILD[2:]),
         ("t/empty.txt", "the transcript is empty", "remove it or add its text"), {"t/empty.txt": ""}),
    Case("build-card-missing-name", ("data", "build", "-t", "{ws}/t", "-p", "{case}/cards.yaml", "--out", "{case}/out"),
         ("cards.yaml:2", "persona card has no 'name'", "add name:"),
         {"cards.yaml": "- name: Ada Bell\n- aliases: [Ben]\n"}),
    Case("build-card-duplicate-alias", ("data", "build", "-t", "{ws}/t", "-p", "{case}/cards.yaml", "--out", "{case}/out"),
         ("cards.yaml:3", "alias 'shared'", "also claimed by 'Ada Bell'", "give each alias to one person"),
         {"cards.yaml": ALIAS_CLASH}),
    Case("build-cards-empty-file", ("data", "build", "-t", "{ws}/t", "-p", "{case}/cards.yaml", "--out", "{case}/out"),
         ("cards.yaml", "a persona card file holds a mapping"), {"cards.yaml": ""}),
    Case("build-config-unknown-key", ("data", "build", "{case}/data.yaml"),
         ("data.yaml:4", "unknown key 'transcript'", "did you mean 'transcripts'"),
         {"data.yaml": DATA + "transcript: x\n"}),
    Case("build-config-wrong-type", ("data", "build", "{case}/data.yaml"),
         ("data.yaml:4", "key 'seed'", "valid integer", "'abc'"), {"data.yaml": DATA + "seed: abc\n"}),
    Case("build-config-missing", ("data", "build", "{case}/missing.yaml"), ("missing.yaml", "file not found",
                                                                             "check the path")),
    Case("build-config-invalid-yaml", ("data", "build", "{case}/data.yaml"),
         ("data.yaml:2", "invalid YAML", "fix the syntax"), {"data.yaml": "seed: 1\nout: x: y\n"}),
    Case("build-over-earlier-dataset-with-bad-transcript",
         ("data", "build", "-t", "{case}/t", "-p", "{ws}/cards.yaml", "--out", "{ws}/built"),
         ("t/image.txt:1", "binary file"), {"t/image.txt": b"\x00PNG"}),
    Case("build-out-is-a-file", ("data", "build", "-t", "{ws}/t", "-p", "{ws}/cards.yaml", "--out", "{ws}/cards.yaml"),
         ("cards.yaml", "not a folder", "choose another --out")),
    Case("build-out-unwritable", ("data", "build", "-t", "{ws}/t", "-p", "{ws}/cards.yaml", "--out",
                                  "{ws}/cards.yaml/sub"), ("cards.yaml/sub", "cannot write", "check --out")),
    Case("build-override-without-equals", ("data", "build", "{case}/data.yaml", "--set", "seed"),
         ("override 'seed'", "expected key=value"), {"data.yaml": DATA}),
    Case("build-override-wrong-type", ("data", "build", "{case}/data.yaml", "--set", "seed=x"),
         ("override 'seed=x'", "key 'seed'", "valid integer"), {"data.yaml": DATA}),
    Case("build-option-wrong-type", ("data", "build", "--seed", "x"),
         ("'--seed'", "valid integer", "--help"), process=True),
    Case("build-teacher-url-alone", (*BUILD, "-t", "{ws}/t", "--teacher-url", "http://127.0.0.1:9/v1"),
         ("--teacher-url and --teacher-model go together",)),
    # --------------------------------------------------------------------------------- data validate/stats/speakers
    Case("validate-missing-file", ("data", "validate", "{case}/nope.jsonl"), ("nope.jsonl", "file not found")),
    Case("validate-binary-file", ("data", "validate", "{case}/x.jsonl"),
         ("x.jsonl:1", "binary file", "one JSON object per line"), {"x.jsonl": b"\x00\x01"}),
    Case("validate-max-length-without-model", ("data", "validate", "{data}/train.jsonl", "--max-length", "64"),
         ("--max-length needs --model",)),
    Case("validate-model-not-found", ("data", "validate", "{data}/train.jsonl", "--max-length", "64", "--model",
                                      "{case}/no-model/"), ("--model", "no-model", "not found")),
    Case("stats-malformed-jsonl", ("data", "stats", "{case}/ds"),
         ("ds/train.jsonl:3", "invalid JSON", "persona data validate"),
         {"ds/train.jsonl": RECORD * 2 + "{oops\n", "ds/eval.jsonl": RECORD}),
    Case("stats-record-with-wrong-types", ("data", "stats", "{case}/ds"),
         ("ds/eval.jsonl:1", "'prompt' and 'completion' must be strings", "persona data validate"),
         {"ds/train.jsonl": RECORD, "ds/eval.jsonl": '{"prompt": 1, "completion": 2}\n'}),
    Case("stats-missing-folder", ("data", "stats", "{case}/nothing"), ("nothing", "not a dataset folder")),
    Case("speakers-binary", ("data", "speakers", "{case}/x.srt"), ("x.srt:1", "binary file"), {"x.srt": b"\x00"}),
    Case("speakers-unknown-format", ("data", "speakers", "{ws}/t", "--format", "docx"),
         ("--format 'docx'", "use one of")),
    Case("speakers-duplicate-alias", ("data", "speakers", "{ws}/t", "-p", "{case}/cards.yaml"),
         ("cards.yaml:3", "also claimed by"), {"cards.yaml": ALIAS_CLASH}),
    Case("speakers-missing-path", ("data", "speakers", "{case}/gone"), ("gone", "no such file or folder")),
    # ---------------------------------------------------------------------------------------------------- train
    Case("train-config-missing", ("train", "{case}/missing.yaml"), ("missing.yaml", "file not found")),
    Case("train-config-empty", ("train", "{case}/train.yaml"), ("train.yaml", "missing required key 'model'"),
         {"train.yaml": ""}),
    Case("train-config-not-a-mapping", ("train", "{case}/train.yaml"), ("train.yaml", "expected a mapping"),
         {"train.yaml": "- model\n- data\n"}),
    Case("train-config-binary", ("train", "{case}/train.yaml"), ("train.yaml:1", "binary file", "YAML"),
         {"train.yaml": b"\x00\x00"}),
    Case("train-unknown-key", ("train", "{case}/train.yaml"),
         ("train.yaml:7", "unknown key 'lora.rank'", "did you mean 'lora.r'"),
         {"train.yaml": train_config(lora="lora: {rank: 4}")}, process=True),
    Case("train-wrong-type", ("train", "{case}/train.yaml"),
         ("train.yaml:8", "key 'train.max_steps'", "valid integer", "'many'"),
         {"train.yaml": train_config(train="train: {max_steps: many}")}),
    Case("train-override-without-equals", ("train", "{case}/train.yaml", "train.epochs"),
         ("override 'train.epochs'", "expected key=value"), {"train.yaml": TRAIN}),
    Case("train-override-unknown-key", ("train", "{case}/train.yaml", "lora.rank=3"),
         ("override 'lora.rank=3'", "did you mean 'lora.r'"), {"train.yaml": TRAIN}),
    Case("train-unknown-option", ("train", "{case}/train.yaml", "--epochs", "2"),
         ("No such option: --epochs", "persona train --help"), {"train.yaml": TRAIN}),
    Case("train-model-not-found", ("train", "{case}/train.yaml"), ("model './no/such/model'", "not found"),
         {"train.yaml": train_config(model="model:\n  name: ./no/such/model")}),
    Case("train-hub-model-offline", ("train", "{case}/train.yaml"),
         ("model 'nobody-here/no-such-model'", "cannot be reached", "embedded model"),
         {"train.yaml": train_config(model="model:\n  name: nobody-here/no-such-model")}, process=True),
    Case("train-pickle-only-model", ("train", "{case}/train.yaml"),
         ("pytorch_model.bin", "pickle weights", "can run code", "--allow-pickle"),
         {"train.yaml": train_config(model="model:\n  name: {pickle}")}),
    Case("train-every-sample-too-long", ("train", "{case}/train.yaml", "data.max_length=16"),
         ("no usable sample", "data.max_length 16", "raise data.max_length"), {"train.yaml": TRAIN}),
    Case("train-dataset-missing", ("train", "{case}/train.yaml", "data.path={case}/none"),
         ("data.path", "none does not exist", "persona data build"), {"train.yaml": TRAIN}),
    Case("train-dataset-malformed-jsonl", ("train", "{case}/train.yaml", "data.path={case}/ds"),
         ("ds/train.jsonl:3", "invalid JSON", "persona data validate"),
         {"train.yaml": TRAIN, "ds/train.jsonl": RECORD * 2 + '{"prompt": "x",\n'}),
    Case("train-dataset-empty", ("train", "{case}/train.yaml", "data.path={case}/ds"),
         ("data.path", "has no training records", "persona data build"),
         {"train.yaml": TRAIN, "ds/train.jsonl": "\n"}),
    Case("train-dataset-binary", ("train", "{case}/train.yaml", "data.path={case}/ds"),
         ("ds/train.jsonl:1", "binary file"), {"train.yaml": TRAIN, "ds/train.jsonl": b"\x00\xff"}),
    Case("train-dataset-persona-not-a-string", ("train", "{case}/train.yaml", "data.path={case}/ds"),
         ("ds/train.jsonl:2", "'persona' must be a string", "persona data validate"),
         {"train.yaml": TRAIN, "ds/train.jsonl": RECORD + RECORD.replace('"Ada Bell"', '["Ada"]')}),
    Case("train-output-dir-unwritable", ("train", "{case}/train.yaml", "output.dir={ws}/cards.yaml/runs"),
         ("output.dir", "not writable", "choose another output.dir"), {"train.yaml": TRAIN}),
    Case("train-no-config", ("train",), ("give a training config",)),
    Case("train-resume-unknown-run", ("train", "--resume", "no-such-run", "--runs-dir", "{runs}"),
         ("run 'no-such-run' not found", "persona runs list")),
    Case("train-resume-finished-run", ("train", "--resume", "{good}"), ("already finished", "nothing to resume")),
    Case("train-resume-with-config", ("train", "{case}/train.yaml", "--resume", "{failed}"),
         ("--resume RUN takes no CONFIG",), {"train.yaml": TRAIN}),
    # ---------------------------------------------------------------------------------------------------- merge
    Case("merge-failed-run", ("merge", "{failed}"), ("is failed", "only a finished run can be merged"), process=True),
    Case("merge-unknown-run", ("merge", "no-such-run", "--runs-dir", "{runs}"), ("not found", "persona runs list")),
    Case("merge-latest-without-runs", ("merge", "latest", "--runs-dir", "{case}/none"),
         ("no finished run yet", "train one first")),
    Case("merge-disk-full", ("merge", "{good}"), ("not enough disk space for the merged model", "free some space"),
         patch=_no_disk_space),
    # ----------------------------------------------------------------------------------------------------- eval
    Case("eval-failed-run", ("eval", "{failed}"), ("is failed", "only a finished run can be evaluated"),
         process=True),
    Case("eval-unknown-run", ("eval", "no-such-run", "--runs-dir", "{runs}"), ("run 'no-such-run' not found",)),
    Case("eval-unknown-split", ("eval", "{good}", "--split", "test"), ("--split test", "use one of eval, train")),
    Case("eval-max-samples-zero", ("eval", "{good}", "--max-samples", "0"), ("--max-samples must be at least 1",)),
    Case("eval-dataset-of-another-split", ("eval", "{case}/run"),
         ("data.path", "data2", "changed since run", "evaluate on the data it was trained on"),
         prepare=_changed_dataset),
    Case("eval-run-config-broken", ("eval", "{case}/run"), ("run/config.yaml", "unknown key 'lora_rank'", "did you mean"),
         prepare=_corrupt_run_config),
    # ---------------------------------------------------------------------------------------------- leaderboard
    Case("leaderboard-runs-missing", ("leaderboard", "--runs", "{case}/none"), ("none not found", "--runs DIR"),
         process=True),
    Case("leaderboard-no-evaluated-runs", ("leaderboard", "--runs", "{case}/runs"), ("no evaluated runs",
                                                                                      "persona eval RUN"),
         {"runs/.keep": ""}),
    Case("leaderboard-unknown-format", ("leaderboard", "--runs", "{runs}", "--format", "docx"),
         ("--format docx", "use one of md, csv, json, html")),
    Case("leaderboard-unknown-metric", ("leaderboard", "--runs", "{runs}", "--metric", "bogus"),
         ("--metric bogus", "available: ")),
    Case("leaderboard-out-is-a-file", ("leaderboard", "--runs", "{runs}", "--out", "{ws}/cards.yaml"),
         ("--out", "cards.yaml is a file", "give a folder")),
    Case("leaderboard-corrupt-metrics", ("leaderboard", "--runs", "{case}/runs"),
         ("r1/eval/eval/metrics.json", "not valid JSON", "re-run"), {"runs/r1/eval/eval/metrics.json": "{bad"}),
    # ------------------------------------------------------------------------------------------------ run, sweep
    Case("run-config-missing", ("run", "{case}/missing.yaml"), ("missing.yaml", "file not found")),
    Case("run-unknown-key", ("run", "{case}/train.yaml"), ("train.yaml:1", "unknown key 'modle'", "did you mean"),
         {"train.yaml": "modle: {name: x}\n" + TRAIN}),
    Case("run-dataset-missing-and-no-data-config", ("run", "{case}/train.yaml", "data.path={case}/none"),
         ("data.path", "no data config to build it", "--data-config"), {"train.yaml": TRAIN}),
    Case("run-data-config-missing", ("run", "{case}/train.yaml", "data.path={case}/none", "--data-config",
                                     "{case}/missing.yaml"), ("missing.yaml", "file not found"),
         {"train.yaml": TRAIN}),
    Case("sweep-config-missing", ("sweep", "{case}/a.yaml", "{case}/missing.yaml"),
         ("config not found", "missing.yaml"), {"a.yaml": TRAIN}, process=True),
    # ------------------------------------------------------------------------------------------- runs, models
    Case("runs-show-unknown", ("runs", "show", "no-such-run", "--runs-dir", "{runs}"),
         ("run 'no-such-run' not found", "persona runs list"), process=True),
    Case("runs-rm-unknown", ("runs", "rm", "no-such-run", "--runs-dir", "{runs}"), ("not found",)),
    Case("runs-rm-running", ("runs", "rm", "busy", "--runs-dir", "{case}/runs"), ("still running", "stop it first"),
         prepare=_running_run),
    Case("models-pull-unknown", ("models", "pull", "no-such-model"),
         ("unknown embedded model 'pkg:no-such-model'", "known: pkg:"), process=True),
]


# -------------------------------------------------------------------------------------------------- workspace
@dataclass
class Workspace:
    root: Path
    paths: dict[str, str]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_model, tiny_dataset, pickle_model) -> Workspace:
    """One folder with everything a case may touch: cards, transcripts, a dataset, an earlier build, a finished and
    evaluated run and a failed run (trained in this process: the fixture is setup, not the thing under test)."""
    from personaforge.config import load_train_config
    from personaforge.evaluate.runner import evaluate_run
    from personaforge.train import RunFailed, train

    root = tmp_path_factory.mktemp("matrix")
    (root / "cards.yaml").write_text(CARDS, encoding="utf-8")
    (root / "t").mkdir()
    (root / "t" / "one.txt").write_text(tab_transcript(ADA, BEN), encoding="utf-8")
    shutil.copytree(tiny_dataset, root / "data")
    build_dataset(DataConfig(transcripts=[str(root / "t")], personas=[str(root / "cards.yaml")],
                             out=str(root / "built"), eval_fraction=0.2))
    paths = {"ws": str(root), "data": str(root / "data"), "runs": str(root / "runs"), "model": str(tiny_model),
             "pickle": str(pickle_model)}
    setup = root.parent / f"{root.name}-configs"
    setup.mkdir()
    good_config = setup / "good.yaml"
    good_config.write_text(_fill(train_config(train="train: {max_steps: 2, batch_size: 4, threads: 1}"), paths))
    good = train(load_train_config(good_config)[0], "good", log=lambda message: None)
    evaluate_run(good, max_samples=2, log=lambda message: None)
    bad_config = setup / "bad.yaml"
    bad_config.write_text(_fill(train_config(train="train: {epochs: 2, lr: 10000.0, max_grad_norm: 1000000000.0,"
                                                   " grad_spike_factor: 2.0, threads: 1}"), paths))
    with pytest.raises(RunFailed) as failed:
        train(load_train_config(bad_config)[0], "bad", log=lambda message: None)
    assert Run(good.path).status == "finished" and failed.value.run.status == "failed"
    paths.update(good=str(good.path), failed=str(failed.value.run.path))
    return Workspace(root, paths)


def _fill(text: str, paths: dict[str, str]) -> str:
    for key, value in paths.items():
        text = text.replace("{" + key + "}", value)
    return text


def _prepare(case: Case, workspace: Workspace) -> dict[str, str]:
    folder = workspace.root / "cases" / case.id
    folder.mkdir(parents=True)
    paths = {**workspace.paths, "case": str(folder)}
    for name, content in case.files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(_fill(content, paths), encoding="utf-8")
    if case.prepare is not None:
        case.prepare(paths)
    return paths


def test_the_matrix_is_wide():
    commands = {" ".join(case.args[:2]) if case.args[0] in ("data", "runs", "models") else case.args[0]
                for case in CASES}
    assert len(CASES) >= 40 and len({case.id for case in CASES}) == len(CASES)
    assert {"data build", "data validate", "data stats", "data speakers", "train", "merge", "eval", "leaderboard",
            "run", "sweep", "runs show", "runs rm", "models pull"} <= commands


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case: Case, workspace: Workspace, monkeypatch, capfd):
    paths = _prepare(case, workspace)
    args = [_fill(arg, paths) for arg in case.args]
    before = snapshot(workspace.root)
    offline = {"HF_HUB_OFFLINE": "1"}  # a hub id must never wait on the network here
    if case.process:
        result = run_persona(*args, cwd=workspace.root, env=offline)
    else:
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        if case.patch is not None:
            case.patch(monkeypatch)
        result = run_in_process(args, workspace.root, monkeypatch, capfd)
    assert_user_error(result, *(_fill(needle, paths) for needle in case.needles))
    assert not any(line.startswith(("run:", "dataset:", "merged:", "eval:", "removed:")) for line in
                   result.stdout.splitlines()), result.stdout
    after = snapshot(workspace.root)
    assert after == before, {key: (before.get(key), after.get(key)) for key in set(before) | set(after)
                             if before.get(key) != after.get(key)}
