"""The attribution classifier is near-perfect on distinct personas and at chance on shuffled labels; the
blending index separates personas that answer alike from personas that do not."""

from __future__ import annotations

import random
from typing import ClassVar

import numpy as np
import pytest

from personaforge.errors import PersonaForgeError
from personaforge.evaluate.attribution import PersonaClassifier, attribution_report, blending_index
from personaforge.evaluate.metrics import Embedder

SHARED = "i think that the and we it was so really you know every day when there".split()
VOCAB = {
    "keeper": "lamp lighthouse fog storm ships gulls tower lens wick keeper reef foghorn salt waves".split(),
    "baker": "bread dough oven flour rye yeast crust loaf butter sourdough bakery croissant knead".split(),
    "planter": "tea leaves bushes estate monsoon pluckers garden soil compost factory darjeeling bud".split(),
}


def _sentences(persona: str, count: int, rng: random.Random) -> list[str]:
    """Half shared filler, half the persona's own words: distinct vocabularies, similar shape."""
    out = []
    for _ in range(count):
        words = rng.choices(SHARED, k=6) + rng.choices(VOCAB[persona], k=6)
        rng.shuffle(words)
        out.append(" ".join(words).capitalize() + ".")
    return out


def _corpus(per_persona: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for persona in VOCAB:
        texts += _sentences(persona, per_persona, rng)
        labels += [persona] * per_persona
    return texts, labels


def test_near_perfect_on_clearly_distinct_personas():
    texts, labels = _corpus(30, seed=0)
    train = [i for i in range(len(texts)) if i % 30 < 20]
    test = [i for i in range(len(texts)) if i % 30 >= 20]
    classifier = PersonaClassifier(seed=0).fit([texts[i] for i in train], [labels[i] for i in train])
    report = attribution_report(classifier, [texts[i] for i in test], [labels[i] for i in test])
    assert report["accuracy"] >= 0.95 and report["macro_f1"] >= 0.95
    assert report["confusion"]["labels"] == ["baker", "keeper", "planter"]
    matrix = np.array(report["confusion"]["matrix"])
    assert matrix.sum() == 30 and np.trace(matrix) == round(report["accuracy"] * 30)
    assert report["n"] == 30


def test_near_chance_on_shuffled_labels():
    texts, labels = _corpus(200, seed=1)
    train = [i for i in range(len(texts)) if i % 2 == 0]
    test = [i for i in range(len(texts)) if i % 2 == 1]
    # Each persona's training texts get the three labels equally often, in random order: a plain shuffle
    # would leave chance imbalances (keeper texts mostly labelled "baker") that a classifier learns.
    rng, names, shuffled = random.Random(2), list(VOCAB), {}
    for persona in names:
        mine = [i for i in train if labels[i] == persona]
        fake = [names[k % len(names)] for k in range(len(mine))]
        rng.shuffle(fake)
        shuffled.update(zip(mine, fake))
    classifier = PersonaClassifier(seed=0).fit([texts[i] for i in train], [shuffled[i] for i in train])
    report = attribution_report(classifier, [texts[i] for i in test], [labels[i] for i in test])
    # 300 test answers: one standard error of accuracy at chance (1/3) is about 0.027.
    assert abs(report["accuracy"] - 1 / 3) < 0.1, report["accuracy"]


def test_fitting_is_deterministic_and_empty_answers_are_labelled():
    texts, labels = _corpus(15, seed=3)
    probe = ["Fog and ships and the lamp.", "", "Knead the dough, bake the loaf."]
    first = PersonaClassifier(seed=0).fit(texts, labels).predict(probe)
    assert first == PersonaClassifier(seed=0).fit(texts, labels).predict(probe)
    assert first[0] == "keeper" and first[2] == "baker" and first[1] in VOCAB


def test_a_persona_the_classifier_never_saw_counts_as_wrong():
    texts, labels = _corpus(10, seed=4)
    classifier = PersonaClassifier().fit(texts, labels)
    report = attribution_report(classifier, ["Lamp fog tower.", "Tea estate bushes."], ["keeper", "poet"])
    assert report["confusion"]["labels"] == ["baker", "keeper", "planter", "poet"]
    assert report["accuracy"] == 0.5


def test_one_persona_is_a_user_error():
    with pytest.raises(PersonaForgeError, match="at least two personas"):
        PersonaClassifier().fit(["a", "b"], ["ada", "ada"])


class _PlaneEmbedder(Embedder):
    """Hand-made 2-D unit vectors instead of MiniLM, to check the formula by hand."""

    VECTORS: ClassVar[dict[str, tuple[float, float]]] = {"a1": (1.0, 0.0), "b1": (0.6, 0.8), "a2": (0.8, 0.6), "b2": (0.0, 1.0)}

    def _encode(self, texts: list[str]) -> np.ndarray:
        return np.array([self.VECTORS[t] for t in texts])


def test_blending_index_formula_by_hand():
    probes = {"q1": {"ada": "a1", "ben": "b1"}, "q2": {"ada": "a2", "ben": "b2"}}
    result = blending_index(probes, _PlaneEmbedder())
    # between: cos(a1,b1) = cos(a2,b2) = 0.6; within: cos(a1,a2) = cos(b1,b2) = 0.8
    assert result["between"] == pytest.approx(0.6) and result["within"] == pytest.approx(0.8)
    assert result["blending_index"] == pytest.approx((0.6 - 0.8) / (1 - 0.8))
    assert (result["questions"], result["personas"]) == (2, 2)


def test_blending_index_is_high_for_identical_answers_and_low_for_distinct_personas(embedder):
    rng = random.Random(5)
    topics = ["your mornings", "your family", "the weather", "your work"]
    distinct = {topic: {persona: f"About {topic}: " + _sentences(persona, 1, rng)[0] for persona in VOCAB}
                for topic in topics}
    blended = {topic: {persona: distinct[topic]["keeper"] for persona in VOCAB} for topic in topics}
    same = blending_index(blended, embedder)
    apart = blending_index(distinct, embedder)
    assert same["blending_index"] == pytest.approx(1.0, abs=1e-5)
    assert apart["blending_index"] < 0.3
    assert same["blending_index"] - apart["blending_index"] > 0.7


def test_blending_index_needs_two_personas_and_two_questions():
    with pytest.raises(PersonaForgeError, match="two personas"):
        blending_index({"q1": {"ada": "a1"}, "q2": {"ada": "a2"}}, _PlaneEmbedder())
    with pytest.raises(PersonaForgeError, match="two probe questions"):
        blending_index({"q1": {"ada": "a1", "ben": "b1"}}, _PlaneEmbedder())
