"""Which of an eval's recorded generation settings (metrics.json meta.generation) shape its answers.

Two evaluations of the same records are comparable only when these agree: the sweep re-evaluates a run whose
saved results used other settings, and the leaderboard never ranks such results against each other.
"""

from __future__ import annotations

from typing import Any

# Results saved before these keys existed were produced the way HF generate works by default.
LEGACY = {"repetition_penalty": 1.0, "repetition_penalty_scope": "prompt_and_answer", "end_rule": "argmax"}


def effective_decoding(generation: dict[str, Any]) -> dict[str, Any]:
    """The settings that change the answers, with the legacy defaults filled in and the moot ones left out."""
    used = {**LEGACY, **generation}
    used.pop("batch_size", None)  # batches decode the same answers
    if used["repetition_penalty"] == 1.0:
        used.pop("repetition_penalty_scope")  # without a penalty its scope changes nothing
    if used.get("temperature", 0) > 0:
        used.pop("end_rule")  # sampling draws the end token with its own probability: no rule applies
    else:
        used.pop("top_p", None)  # greedy: nothing is sampled
        used.pop("seed", None)
    return used


def describe(generation: dict[str, Any] | None) -> str:
    """One short phrase for a heading, e.g. "greedy, penalty 1.2 on the answer, ends likelier_than_not, 128 tokens"."""
    if not generation:
        return "decoding unknown"
    used = effective_decoding(generation)
    temperature = used.get("temperature", 0)
    parts = [f"sampled (temperature {temperature:g}, top_p {used.get('top_p', 1):g}, seed {used.get('seed')})"
             if temperature > 0 else "greedy"]
    if used["repetition_penalty"] != 1.0:
        scope = "on the answer" if used.get("repetition_penalty_scope") == "answer" else "on prompt and answer"
        parts.append(f"penalty {used['repetition_penalty']:g} {scope}")
    if "end_rule" in used:
        parts.append(f"ends {used['end_rule']}")
    if used.get("max_new_tokens"):
        parts.append(f"{used['max_new_tokens']} tokens")
    return ", ".join(parts)
