"""Leaderboard: collection from a fake runs folder, ranking per eval set, comparisons, verdicts, renderers."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from personaforge.errors import PersonaForgeError
from personaforge.leaderboard import (
    Leaderboard,
    Paired,
    build_leaderboard,
    collect,
    human_size,
    paired_test,
    parse_family,
    parse_instruct,
    parse_size,
)

N = 24
PERSONAS = ["Ada Bell", "Ben Ortiz", "Cleo Day"]
SET_A, SET_B = "a" * 64, "b" * 64
# Per-sample difficulty shared by every run: the runs are paired, as real runs on one eval set are.
DIFFICULTY = np.random.default_rng(0).normal(0, 0.08, N)
DIFFICULTY -= DIFFICULTY.mean()

LLAMA_I = "2026-11-01_10-00-00-llama3-8b-instruct"
LLAMA_B = "2026-11-01_11-00-00-llama3-8b"
MISTRAL_B = "2026-11-02_09-00-00-mistral-7b"
MISTRAL_I = "2026-11-02_10-00-00-mistral-7b-instruct"
SMOL = "2026-11-03_08-00-00-smollm2"
LLAMA_I_BASELINE = f"{LLAMA_I} (eval-baseline)"


def _noise(seed: int, sd: float) -> np.ndarray:
    """Zero-mean noise, so a run's per-sample scores average to exactly its planted target."""
    values = np.random.default_rng(seed).normal(0, sd, N)
    return values - values.mean()


def write_run(root: Path, name: str, model: str, *, train: bool = True, loss: float = 2.0) -> Path:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"model:\n  name: {model}\n", encoding="utf-8")
    (run / "status.json").write_text(json.dumps({"status": "finished"}), encoding="utf-8")
    if train:
        history = [{"step": s, "loss": loss / s, "epoch": s / 4} for s in range(1, 9)]
        history += [{"step": 4, "eval_loss": loss / 3, "epoch": 1.0}, {"step": 8, "eval_loss": loss / 5, "epoch": 2.0}]
        (run / "train_metrics.json").write_text(json.dumps(
            {"wall_s": 754.0, "tokens_per_s": 110.0, "final_loss": loss / 8, "eval_loss": loss / 5,
             "loss_history": history}), encoding="utf-8")
    return run


def write_eval(run: Path, name: str, rouge1: np.ndarray, *, model: str, fingerprint: str = SET_A,
               semantic: float = 0.5, perfect_text: bool = False, **meta: object) -> None:
    """metrics.json + predictions.jsonl with the contract's shape; rouge1 is the per-sample column."""
    folder = run / "eval" / name
    folder.mkdir(parents=True)
    sem = semantic + _noise(len(name) + 7, 0.01) + DIFFICULTY / 4
    mean = float(rouge1.mean())
    metrics = {
        "exact_match": 0.0, "avg_jaccard_overlap": mean / 2, "rouge1": mean, "rouge2": mean / 2, "rougeL": mean * 0.9,
        "rougeLsum": mean * 0.9, "bleu": 0.9 if perfect_text else mean / 3,
        "chrf": mean * 1.1, "semantic_similarity": float(sem.mean()), "length_ratio": 1.1,
        "distinct_1": 0.6, "distinct_2": 0.8,
        "ci": {"rouge1": [mean - 0.03, mean + 0.03], "semantic_similarity": [sem.mean() - 0.02, sem.mean() + 0.02]},
        "attribution": {"accuracy": 0.8, "macro_f1": 0.78, "reference_accuracy": 0.95, "blending_index": 0.3,
                        "confusion": {"labels": PERSONAS, "matrix": [[7, 1, 0], [1, 6, 1], [0, 1, 7]]}},
        "per_persona": {p: {"rouge1": mean} for p in PERSONAS},
        "definitions": {"rouge1": "Mean over samples of the ROUGE-1 F-measure."},
        "meta": {"run": run.name, "model": model, "family": None, "params": None, "instruct": None,
                 "baseline": name.endswith("-baseline"), "split": "eval", "samples": N,
                 "eval_fingerprint": fingerprint, "tag": None, **meta},
    }
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    lines = []
    for i in range(N):
        expected = f"the lamp turns every ten seconds and sample {i} counts them"
        lines.append(json.dumps({
            "id": f"s{i:02d}", "persona": PERSONAS[i % 3], "prompt": f"question {i}", "expected": expected,
            "prediction": expected if perfect_text else f"bread wants patience {i}",
            "scores": {"rouge1": float(rouge1[i]), "semantic_similarity": float(sem[i])}}))
    (folder / "predictions.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def scores(target: float, seed: int) -> np.ndarray:
    return target + DIFFICULTY + _noise(seed, 0.01)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lb") / "runs"
    # Semantic similarity is planted in the reverse order of ROUGE-1, to see the --metric choice take effect.
    llama_i = write_run(root, LLAMA_I, "meta-llama/Meta-Llama-3-8B-Instruct")
    write_eval(llama_i, "eval", scores(0.345, 1), model="meta-llama/Meta-Llama-3-8B-Instruct", semantic=0.40,
               perfect_text=True)
    write_eval(llama_i, "eval-baseline", scores(0.250, 2), model="meta-llama/Meta-Llama-3-8B-Instruct",
               semantic=0.70)
    write_eval(write_run(root, LLAMA_B, "meta-llama/Meta-Llama-3-8B"), "eval", scores(0.300, 3),
               model="meta-llama/Meta-Llama-3-8B", semantic=0.50, params=8_030_261_248)
    # A nested grouping folder: runs are found recursively.
    write_eval(write_run(root / "sweep", MISTRAL_B, "mistralai/Mistral-7B-v0.1"), "eval", scores(0.321, 4),
               model="mistralai/Mistral-7B-v0.1", semantic=0.45, tag="lr2e-4")
    write_eval(write_run(root / "sweep", MISTRAL_I, "mistralai/Mistral-7B-Instruct-v0.2"), "eval",
               scores(0.295, 5), model="mistralai/Mistral-7B-Instruct-v0.2", semantic=0.60)
    # Best value of all, but on other eval records: it must never be ranked against the rest.
    # meta.family "llama" is the architecture; the name says smollm2.
    write_eval(write_run(root, SMOL, "pkg:smollm2-135m-instruct"), "eval", scores(0.600, 6),
               model="pkg:smollm2-135m-instruct", fingerprint=SET_B, family="llama", params=134_515_008,
               instruct=True)
    write_run(root, "2026-11-04_08-00-00-not-evaluated", "pkg:gemma3-270m")
    os.symlink(LLAMA_I, root / "latest")
    elsewhere = root.parent / "elsewhere"
    write_eval(write_run(elsewhere, "linked-run", "Qwen/Qwen2.5-14B"), "eval", scores(0.9, 7),
               model="Qwen/Qwen2.5-14B")
    os.symlink(elsewhere, root / "archive")
    return root


@pytest.fixture(scope="module")
def board(runs: Path) -> Leaderboard:
    return build_leaderboard(collect(runs))


def labels(board: Leaderboard, set_index: int) -> list[str]:
    return [row.entry.label for row in board.eval_sets[set_index - 1].rows]


# ------------------------------------------------------------------------------------------ collecting
def test_collect_searches_recursively_and_skips_symlinks(runs: Path) -> None:
    found = sorted(entry.label for entry in collect(runs))
    assert found == sorted([LLAMA_I, LLAMA_I_BASELINE, LLAMA_B, MISTRAL_B, MISTRAL_I, SMOL])


@pytest.mark.parametrize("model, family, size, instruct", [
    ("meta-llama/Meta-Llama-3-8B-Instruct", "llama3", "8B", True),
    ("meta-llama/Llama-3.1-8B-Instruct", "llama3.1", "8B", True),
    ("meta-llama/Llama-3.2-1B", "llama3.2", "1B", False),
    ("mistralai/Mistral-7B-v0.1", "mistral", "7B", False),
    ("Qwen/Qwen2.5-14B-Instruct", "qwen2.5", "14B", True),
    ("Qwen/Qwen3-32B", "qwen3", "32B", False),
    ("google/gemma-3-27b-it", "gemma3", "27B", True),
    ("pkg:gemma3-270m", "gemma3", "270M", False),
    ("pkg:smollm2-135m-instruct", "smollm2", "135M", True),
    ("/models/my-finetune", None, None, False),
])
def test_model_names_parse(model: str, family: str | None, size: str | None, instruct: bool) -> None:
    assert (parse_family(model), parse_size(model), parse_instruct(model)) == (family, size, instruct)


def test_human_size_from_params() -> None:
    assert [human_size(p) for p in (134_515_008, 268_098_176, 8_030_261_248, 1_711_376_384)] == \
        ["135M", "268M", "8B", "1.7B"]


def test_entry_fields_come_from_meta_or_the_name(runs: Path) -> None:
    entries = {entry.label: entry for entry in collect(runs)}
    smol = entries[SMOL]
    assert (smol.family, smol.size, smol.kind) == ("smollm2", "135M", "instruct")
    assert (entries[LLAMA_B].kind, entries[LLAMA_B].size, entries[MISTRAL_B].tag) == ("base", "8B", "lr2e-4")
    # The untuned baseline lives in the trained run's folder but was not trained itself.
    assert entries[LLAMA_I].wall_s == 754.0 and entries[LLAMA_I_BASELINE].wall_s is None
    assert entries[LLAMA_I_BASELINE].baseline and not entries[LLAMA_I].baseline


# ------------------------------------------------------------------------------------------- ranking
def test_ranked_by_metric_within_each_eval_set(board: Leaderboard) -> None:
    assert [s.fingerprint for s in board.eval_sets] == [SET_A, SET_B]
    assert labels(board, 1) == [LLAMA_I, MISTRAL_B, LLAMA_B, MISTRAL_I, LLAMA_I_BASELINE]
    assert [row.rank for row in board.eval_sets[0].rows] == [1, 2, 3, 4, 5]
    # SmolLM2's 0.600 beats everything, yet it is only ranked among runs on its own eval records.
    assert labels(board, 2) == [SMOL] and board.eval_sets[1].rows[0].rank == 1
    assert board.notes[0].startswith("2 eval sets: ranked separately")
    assert board.eval_sets[0].rows[0].value == pytest.approx(0.345)
    assert board.eval_sets[0].rows[0].ci == pytest.approx((0.315, 0.375))


def test_another_metric_reorders(runs: Path) -> None:
    by_semantic = build_leaderboard(collect(runs), metric="semantic_similarity")
    assert labels(by_semantic, 1) == [LLAMA_I_BASELINE, MISTRAL_I, LLAMA_B, MISTRAL_B, LLAMA_I]
    assert by_semantic.columns[0] == "semantic_similarity"


def test_base_vs_instruct_per_family(board: Leaderboard) -> None:
    found = {(c.family, c.size): (c.better, round(c.pct, 1), c.text) for c in board.families}
    # Llama 0.345 vs 0.300; Mistral base 0.321 vs instruct 0.295 (the original pipeline's directions).
    assert found == {("llama3", "8B"): ("instruct", 15.0, "instruct +15.0%"),
                     ("mistral", "7B"): ("base", 8.8, "base +8.8%")}


def test_baseline_delta(board: Leaderboard) -> None:
    [delta] = board.baseline_deltas
    assert (delta.run, delta.baseline) == (LLAMA_I, LLAMA_I_BASELINE)
    assert delta.delta == pytest.approx(0.095) and delta.delta_pct == pytest.approx(38.0)
    assert delta.intervals_overlap is False
    assert isinstance(delta.test, Paired) and delta.test.significant


# ------------------------------------------------------------------------------------------- verdict
def test_verdict_finds_a_planted_difference(board: Leaderboard) -> None:
    verdict = board.eval_sets[0].verdict
    assert (verdict.winner, verdict.runner_up) == (LLAMA_I, MISTRAL_B)
    # 0.024 apart on every sample up to noise of 0.01: no resample reverses it.
    assert verdict.test.p_value == pytest.approx(1 / 1001)
    assert verdict.test.delta == pytest.approx(0.024) and verdict.test.samples == N
    assert verdict.text.startswith(f"winner {LLAMA_I} is significantly better than {MISTRAL_B} on rouge1 (p=0.001")
    # The verdict states the bound of its own one-sided test, not only the two-sided interval.
    assert 0 < verdict.test.lower_bound < verdict.test.delta
    assert f"at least {verdict.test.lower_bound:+.3f} with one-sided 95% confidence" in verdict.text
    assert board.eval_sets[1].verdict is None and "only one run" in board.eval_sets[1].note


def test_verdict_does_not_find_a_null_difference(tmp_path: Path) -> None:
    a = scores(0.30, 11)
    # The same scores on shuffled samples, a hair lower: equal on average, unrelated per sample.
    b = a[np.random.default_rng(1).permutation(N)] - 0.001
    write_eval(write_run(tmp_path, "run-a", "x/Llama-3-8B"), "eval", a, model="x/Llama-3-8B")
    write_eval(write_run(tmp_path, "run-b", "x/Mistral-7B"), "eval", b, model="x/Mistral-7B")
    verdict = build_leaderboard(collect(tmp_path)).eval_sets[0].verdict
    assert verdict.winner == "run-a"
    assert verdict.test.p_value > 0.3 and not verdict.test.significant and verdict.test.lower_bound < 0
    assert f"winner run-a is not significantly better than run-b on rouge1 (p={verdict.test.p_value:.3f}" \
        in verdict.text


def test_paired_test_matches_samples_by_id(runs: Path) -> None:
    entries = {entry.label: entry for entry in collect(runs)}
    in_order = paired_test(entries[LLAMA_I], entries[MISTRAL_B], "rouge1")
    shuffled = entries[MISTRAL_B]
    shuffled.predictions.reverse()  # cached records: as if the file listed the samples backwards
    assert paired_test(entries[LLAMA_I], shuffled, "rouge1") == in_order


def test_corpus_metric_verdict_recomputes_on_resamples(runs: Path) -> None:
    pytest.importorskip("sacrebleu")
    verdict = build_leaderboard(collect(runs), metric="bleu").eval_sets[0].verdict
    # Only LLAMA_I's predictions equal the references, so its corpus BLEU wins every resample.
    assert verdict.winner == LLAMA_I and verdict.test.significant and verdict.test.delta > 0.5


# -------------------------------------------------------------------------------------------- formats
def test_markdown(board: Leaderboard) -> None:
    md = board.to_markdown()
    first, second = md.split("## Eval set 2")
    assert "## Eval set 1: split eval, 24 samples, fingerprint aaaaaaaaaaaa" in first
    assert SMOL not in first.split("## Eval set 1")[1] and SMOL in second
    assert f"| 1 | {LLAMA_I} | meta-llama/Meta-Llama-3-8B-Instruct | 8B | instruct |  | 0.345 [0.315, 0.375] |" in md
    assert "2 eval sets: ranked separately" in md
    assert f"Verdict: winner {LLAMA_I} is significantly better than {MISTRAL_B}" in md
    assert "instruct +15.0%" in md and "base +8.8%" in md
    assert "| 1 | " + LLAMA_I + " | 0.345 | 0.250 | +0.095 | +38.0% | no | p=0.001 |" in md
    assert "12m 34s" in md  # wall_s 754


def test_csv(board: Leaderboard) -> None:
    rows = list(csv.DictReader(io.StringIO(board.to_csv())))
    assert [(r["eval_set"], r["rank"], r["run"], r["eval"]) for r in rows] == [
        ("1", "1", LLAMA_I, "eval"), ("1", "2", MISTRAL_B, "eval"), ("1", "3", LLAMA_B, "eval"),
        ("1", "4", MISTRAL_I, "eval"), ("1", "5", LLAMA_I, "eval-baseline"), ("2", "1", SMOL, "eval")]
    assert float(rows[0]["value"]) == pytest.approx(0.345) and float(rows[0]["ci_low"]) == pytest.approx(0.315)
    assert float(rows[0]["baseline_delta"]) == pytest.approx(0.095) and rows[0]["train_wall_s"] == "754.0"
    assert rows[4]["baseline"] == "True" and rows[4]["train_wall_s"] == ""
    assert {"chrf", "distinct_2", "attribution_accuracy", "blending_index"} <= set(rows[0])


def test_json(board: Leaderboard) -> None:
    data = json.loads(board.to_json())
    assert data["metric"] == "rouge1" and data["definition"].startswith("Mean over samples")
    first, second = data["eval_sets"]
    assert [r["label"] for r in first["rows"]] == labels(board, 1)
    assert first["verdict"]["winner"] == LLAMA_I and first["verdict"]["significant"] is True
    assert second["verdict"] is None and second["eval_fingerprint"] == SET_B
    assert {c["text"] for c in data["base_vs_instruct"]} == {"instruct +15.0%", "base +8.8%"}
    assert data["baseline_deltas"][0]["paired_test"]["tested"] is True


def test_write_all(board: Leaderboard, tmp_path: Path) -> None:
    out = tmp_path / "report"
    (out / "plots").mkdir(parents=True)
    (out / "plots" / "confusion-a-removed-run.png").write_bytes(b"old")
    (out / "plots" / "notes.png").write_bytes(b"the user's own")
    written = board.write_all(out)
    names = {p.relative_to(out).as_posix() for p in written}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.json", "report.html", "plots/bars-rouge1-set1.png",
            "plots/bars-rouge1-set2.png", "plots/training-loss.png", f"plots/confusion-{LLAMA_I}.png"} <= names
    assert len([n for n in names if n.startswith("plots/confusion-")]) == 6  # one per evaluation
    for path in written:
        assert path.stat().st_size > 0
        if path.suffix == ".png":
            assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not (out / "plots" / "confusion-a-removed-run.png").exists()
    assert (out / "plots" / "notes.png").read_bytes() == b"the user's own"
    assert (out / "leaderboard.md").read_text(encoding="utf-8") == board.to_markdown()
    report = (out / "report.html").read_text(encoding="utf-8")
    for label in (LLAMA_I, LLAMA_I_BASELINE, LLAMA_B, MISTRAL_B, MISTRAL_I, SMOL):
        assert label in report
    assert report.count('src="data:image/png;base64,') == len([n for n in names if n.endswith(".png")])
    assert "instruct +15.0%" in report and "significantly better" in report


# --------------------------------------------------------------------------------------------- errors
def test_no_evaluated_runs(tmp_path: Path) -> None:
    write_run(tmp_path, "trained-only", "pkg:smollm2-135m-instruct")
    with pytest.raises(PersonaForgeError, match="no evaluated runs under .*; run persona eval RUN first"):
        collect(tmp_path)
    with pytest.raises(PersonaForgeError, match="not found"):
        collect(tmp_path / "missing")
    with pytest.raises(PersonaForgeError, match="no evaluated runs"):
        build_leaderboard([])


def test_unknown_metric_lists_the_available_ones(runs: Path) -> None:
    entries = collect(runs)
    with pytest.raises(PersonaForgeError, match="--metric rogue1: unknown metric; available: exact_match, .*rouge1"):
        build_leaderboard(entries, metric="rogue1")
    with pytest.raises(PersonaForgeError, match="length_ratio cannot rank runs"):
        build_leaderboard(entries, metric="length_ratio")


def test_missing_fingerprint_is_ranked_alone(tmp_path: Path) -> None:
    write_eval(write_run(tmp_path, "run-a", "x/Llama-3-8B"), "eval", scores(0.3, 1), model="x/Llama-3-8B")
    write_eval(write_run(tmp_path, "run-b", "x/Llama-3-8B"), "eval", scores(0.2, 2), model="x/Llama-3-8B",
               eval_fingerprint=None)
    board = build_leaderboard(collect(tmp_path))
    assert [labels(board, i) for i in (1, 2)] == [["run-a"], ["run-b"]]
    assert any("has no meta.eval_fingerprint: ranked alone" in note for note in board.notes)


def test_runs_decoded_differently_are_never_ranked_against_each_other(tmp_path: Path) -> None:
    greedy = {"max_new_tokens": 128, "temperature": 0.0, "top_p": 1.0, "batch_size": 32, "seed": 0,
              "repetition_penalty": 1.2, "repetition_penalty_scope": "answer", "end_rule": "likelier_than_not"}
    write_eval(write_run(tmp_path, "run-a", "x/Llama-3-8B"), "eval", scores(0.3, 1), model="x/Llama-3-8B",
               generation=greedy)
    # Batch size and the unused seed do not change greedy answers: the same measurement.
    write_eval(write_run(tmp_path, "run-b", "x/Llama-3-8B"), "eval", scores(0.2, 2), model="x/Llama-3-8B",
               generation={**greedy, "batch_size": 8, "seed": 5})
    # Saved before end_rule existed: plain greedy, which ends answers sooner.
    write_eval(write_run(tmp_path, "run-c", "x/Llama-3-8B"), "eval", scores(0.4, 3), model="x/Llama-3-8B",
               generation={k: v for k, v in greedy.items() if k != "end_rule"})
    board = build_leaderboard(collect(tmp_path))
    assert [labels(board, i) for i in (1, 2)] == [["run-a", "run-b"], ["run-c"]]
    assert [s.fingerprint for s in board.eval_sets] == [SET_A, SET_A]
    assert board.eval_sets[0].title.endswith("greedy, penalty 1.2 on the answer, ends likelier_than_not, 128 tokens")
    assert board.eval_sets[1].title.endswith("greedy, penalty 1.2 on the answer, ends argmax, 128 tokens")
    assert board.eval_sets[1].verdict is None and "decoded with different settings" in board.notes[0]
    assert json.loads(board.to_json())["eval_sets"][1]["decoding"].endswith("ends argmax, 128 tokens")


def test_unreadable_inputs(tmp_path: Path) -> None:
    write_eval(write_run(tmp_path, "run-a", "x/Llama-3-8B"), "eval", scores(0.3, 1), model="x/Llama-3-8B")
    write_eval(write_run(tmp_path, "run-b", "x/Llama-3-8B"), "eval", scores(0.2, 2), model="x/Llama-3-8B")
    (tmp_path / "run-b" / "eval" / "eval" / "predictions.jsonl").unlink()
    verdict = build_leaderboard(collect(tmp_path)).eval_sets[0].verdict
    assert verdict.test is None and "no significance test: no predictions.jsonl in" in verdict.text
    (tmp_path / "run-a" / "eval" / "eval" / "metrics.json").write_text("{\"rouge1\": 0.3,", encoding="utf-8")
    with pytest.raises(PersonaForgeError, match=r"run-a/eval/eval/metrics.json: not valid JSON"):
        collect(tmp_path)


def _plant_attribution(eval_dir: Path, right: np.ndarray) -> None:
    """Per-sample attribution (1 = the classifier named the asked persona) and its mean, as persona eval writes."""
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    metrics["attribution"]["accuracy"] = float(right.mean())
    metrics["ci"]["attribution"] = [float(right.mean()) - 0.1, float(min(1.0, right.mean() + 0.1))]
    (eval_dir / "metrics.json").write_text(json.dumps(metrics))
    rows = [json.loads(line) for line in (eval_dir / "predictions.jsonl").read_text().splitlines()]
    for row, value in zip(rows, right):
        row["scores"]["attribution"] = float(value)
    (eval_dir / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_attribution_is_ranked_and_tested_like_any_metric(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run-a", "x/Llama-3-8B")
    write_eval(run, "eval", scores(0.30, 1), model="x/Llama-3-8B")
    write_eval(run, "eval-baseline", scores(0.31, 2), model="x/Llama-3-8B")
    right = np.ones(N)
    right[:2] = 0  # 22 of 24 right after fine-tuning
    _plant_attribution(run / "eval" / "eval", right)
    _plant_attribution(run / "eval" / "eval-baseline", (np.arange(N) % 2).astype(float))  # 12 of 24
    board = build_leaderboard(collect(tmp_path), metric="attribution")
    assert labels(board, 1) == ["run-a", "run-a (eval-baseline)"]
    assert board.eval_sets[0].rows[0].value == pytest.approx(22 / 24)
    [delta] = board.baseline_deltas
    assert isinstance(delta.test, Paired) and delta.test.significant and delta.test.delta == pytest.approx(10 / 24)
    # By ROUGE-1 the same two runs come out the other way round: the metric choice decides the ranking.
    by_rouge = build_leaderboard(collect(tmp_path))
    assert labels(by_rouge, 1) == ["run-a (eval-baseline)", "run-a"]
    # ... but the fine-tune is tested against its baseline on attribution whatever ranks the board.
    tests = {t.metric: t for t in by_rouge.baseline_tests}
    assert next(iter(tests)) == "rouge1" and not tests["rouge1"].test.significant
    assert tests["attribution"].test.significant and tests["attribution"].delta == pytest.approx(10 / 24)
    assert "| 1 | run-a | attribution | 0.917 | 0.500 | +0.417 |" in by_rouge.to_markdown()
    assert json.loads(by_rouge.to_json())["baseline_tests"][1]["metric"] == "semantic_similarity"


def test_the_tests_table_shows_what_a_search_of_the_persons_own_words_reaches(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run-a", "x/Llama-3-8B")
    write_eval(run, "eval", scores(0.30, 1), model="x/Llama-3-8B")
    write_eval(run, "eval-baseline", scores(0.31, 2), model="x/Llama-3-8B")
    plain = build_leaderboard(collect(tmp_path))
    assert all(t.searched is None for t in plain.baseline_tests) and "own words, searched" not in plain.to_html()
    metrics_path = run / "eval" / "eval" / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["retrieval_level"] = {"rouge1": {"value": 0.1875, "ci": [0.15, 0.22], "samples": N},
                                  "semantic_similarity": {"value": 0.3125, "ci": [0.28, 0.35], "samples": N}}
    metrics_path.write_text(json.dumps(metrics))
    board = build_leaderboard(collect(tmp_path))
    tests = {t.metric: t for t in board.baseline_tests}
    assert tests["rouge1"].searched == 0.1875 and tests["semantic_similarity"].searched == 0.3125
    assert tests["attribution"].searched is None  # no such level: the cell says so instead of inventing one
    markdown = board.to_markdown()
    assert "| 1 | run-a | rouge1 | 0.300 | 0.310 | -0.010 | p=1.000 | no | 0.188 |" in markdown
    assert "| 1 | run-a | semantic_similarity | 0.500 | 0.500 | +0.000 | p=0.481 | no | 0.312 |" in markdown
    assert "own words, searched" in markdown and "retrieval_level" in markdown
    assert "own words, searched" in board.to_html()
    assert json.loads(board.to_json())["baseline_tests"][0]["retrieval_level"] == 0.1875


def test_answers_side_by_side_show_the_best_run_its_baseline_and_the_real_answer(board: Leaderboard) -> None:
    showcase = board.eval_sets[0].showcase
    assert (showcase.run, showcase.baseline, showcase.metric) == (LLAMA_I, LLAMA_I_BASELINE, "rouge1")
    assert sorted(showcase.personas) == sorted(PERSONAS)
    for persona, samples in showcase.personas.items():
        assert [s.pick for s in samples] == ["best", "median", "worst"]
        assert samples[0].score >= samples[1].score >= samples[2].score
        for s in samples:
            assert s.question.startswith("question ") and s.real.startswith("the lamp turns")
            assert s.answer == s.real  # this run's planted answers are perfect copies
            assert s.baseline_answer.startswith("bread wants patience") and s.baseline_score is not None
    best = showcase.personas[PERSONAS[0]][0]
    markdown = board.to_markdown()
    assert "### Answers side by side" in markdown and f"`{best.id}`" in markdown
    assert f"> **Baseline:** {best.baseline_answer}" in markdown
    page = board.to_html()
    # One table per persona in each of the two eval sets (the second holds only the SmolLM2 run, no baseline).
    assert page.count('<table class="answers">') == 6 and f'data-sample="{best.id}"' in page
    assert board.eval_sets[1].showcase.baseline is None


def test_answer_text_is_escaped_in_the_report(tmp_path: Path) -> None:
    run = write_run(tmp_path, "run-x", "x/Llama-3-8B")
    write_eval(run, "eval", scores(0.3, 1), model="x/Llama-3-8B")
    path = run / "eval" / "eval" / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:
        row["prediction"] = "<script>alert(1)</script> <img src=x onerror=alert(2)>"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = build_leaderboard(collect(tmp_path)).to_html()
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
