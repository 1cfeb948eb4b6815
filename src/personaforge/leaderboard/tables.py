"""leaderboard.csv (one row per entry, every metric) and leaderboard.json (the whole board)."""

from __future__ import annotations

import csv
import io
from typing import Any

from personaforge.arena.ratings import ARENA_CSV, arena_csv
from personaforge.evaluate.stats import ALPHA
from personaforge.fileio import display_path
from personaforge.leaderboard.collect import as_number
from personaforge.leaderboard.rank import Board, Paired, Row


def render_csv(board: Board) -> str:
    metrics = board.all_metrics
    header = ["eval_set", "eval_fingerprint", "rank", "run", "eval", "model", "family", "size", "params", "type",
              "tag", "baseline", "metric", "value", "ci_low", "ci_high"]
    for name in metrics:
        header += [name, f"{name}_ci_low", f"{name}_ci_high"]
    header += ["attribution_accuracy", "attribution_macro_f1", "reference_accuracy", "blending_index",
               "train_wall_s", "tokens_per_s", "final_loss", "eval_loss", "baseline_delta", "path",
               *(ARENA_CSV if board.arena else [])]
    deltas = {(d.eval_set, d.run): d.delta for d in board.baseline_deltas}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for eval_set in board.eval_sets:
        for row in eval_set.rows:
            e = row.entry
            cells: list[Any] = [eval_set.index, eval_set.fingerprint or "", row.rank or "", e.run, e.eval_name,
                                e.model, e.family or "", e.size or "", e.params or "", e.kind, e.tag or "",
                                e.baseline, board.metric, _blank(row.value), *(_blank(c) for c in row.ci or ("", ""))]
            for name in metrics:
                ci = e.ci.get(name) or ("", "")
                cells += [_blank(e.metrics.get(name)), _blank(ci[0]), _blank(ci[1])]
            a = e.attribution
            cells += [_blank(as_number(a.get(k))) for k in ("accuracy", "macro_f1", "reference_accuracy",
                                                         "blending_index")]
            cells += [_blank(as_number(e.train.get(k))) for k in ("wall_s", "tokens_per_s", "final_loss", "eval_loss")]
            cells += [_blank(deltas.get((eval_set.index, e.label))), display_path(e.path)]
            cells += arena_csv(board.arena_rating(e)) if board.arena else []
            writer.writerow(cells)
    return buffer.getvalue()


def _blank(value: Any) -> Any:
    return "" if value is None else value


def _paired_dict(test: Paired | str | None) -> dict[str, Any] | None:
    if test is None:
        return None
    if isinstance(test, str):
        return {"tested": False, "reason": test}
    return {"tested": True, "delta": test.delta, "ci": list(test.ci), "lower_bound": test.lower_bound,
            "p_value": test.p_value, "significant": test.significant, "samples": test.samples,
            "resamples": test.resamples}


def _entry_dict(row: Row) -> dict[str, Any]:
    e = row.entry
    return {
        "rank": row.rank, "run": e.run, "eval": e.eval_name, "label": e.label, "model": e.model,
        "family": e.family, "size": e.size, "params": e.params, "type": e.kind, "instruct": e.instruct,
        "tag": e.tag, "baseline": e.baseline, "status": e.status, "value": row.value,
        "ci": list(row.ci) if row.ci else None, "metrics": e.metrics, "ci_all": {k: list(v) for k, v in e.ci.items()},
        "attribution": {k: e.attribution.get(k) for k in ("accuracy", "macro_f1", "reference_accuracy",
                                                          "blending_index")},
        "train": {k: e.train.get(k) for k in ("wall_s", "tokens_per_s", "final_loss", "eval_loss")},
        "path": display_path(e.path),
    }


def as_dict(board: Board) -> dict[str, Any]:
    sets = []
    for s in board.eval_sets:
        verdict = None
        if s.verdict:
            verdict = {"winner": s.verdict.winner, "runner_up": s.verdict.runner_up, "text": s.verdict.text,
                       **(_paired_dict(s.verdict.test or s.verdict.reason) or {})}
        rows = [_entry_dict(row) for row in s.rows]
        for data, row in zip(rows, s.rows):
            rating = board.arena_rating(row.entry)
            data["arena"] = rating.to_dict() if rating else None
        sets.append({"index": s.index, "eval_fingerprint": s.fingerprint, "split": s.split, "samples": s.samples,
                     "decoding": s.decoding, "rows": rows, "verdict": verdict,
                     "note": s.note})
    return {
        "metric": board.metric, "definition": board.definition, "alpha": ALPHA, "notes": board.notes,
        "eval_sets": sets, "arena": board.arena.to_dict() if board.arena else None,
        "base_vs_instruct": [{"eval_set": c.eval_set, "family": c.family, "size": c.size, "base": c.base,
                              "base_value": c.base_value, "instruct": c.instruct, "instruct_value": c.instruct_value,
                              "better": c.better, "pct": c.pct, "text": c.text} for c in board.families],
        "baseline_deltas": [{"eval_set": d.eval_set, "run": d.run, "baseline": d.baseline, "value": d.value,
                             "baseline_value": d.baseline_value, "delta": d.delta, "delta_pct": d.delta_pct,
                             "intervals_overlap": d.intervals_overlap, "paired_test": _paired_dict(d.test)}
                            for d in board.baseline_deltas],
        "baseline_tests": [{"eval_set": d.eval_set, "run": d.run, "baseline": d.baseline, "metric": d.metric,
                            "value": d.value, "baseline_value": d.baseline_value, "delta": d.delta,
                            "retrieval_level": d.searched, "paired_test": _paired_dict(d.test)}
                           for d in board.baseline_tests],
    }
