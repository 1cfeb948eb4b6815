"""Persona attribution: do the answers still sound like the persona they were asked to be?

Two measures, because the original pipeline's personas blended together and nobody measured it:

* a text classifier trained on the training set's completions labels each generated answer with a
  persona (accuracy, macro-F1, confusion matrix); on the real eval references it gives the ceiling;
* the blending index compares answers of different personas to the same question (cross-persona probes)
  with one persona's answers to different questions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from personaforge.errors import PersonaForgeError
from personaforge.evaluate.metrics import Embedder, default_embedder


class PersonaClassifier:
    """Labels a text with the persona whose training completions it resembles most.

    Word 1-2-grams catch vocabulary and topics, character 2-5-grams catch style (spelling, punctuation,
    word endings); both are sublinear TF-IDF so one repeated word does not dominate. LinearSVC is the
    usual strong baseline for short-text attribution, and with a fixed random_state it is deterministic.
    """

    def __init__(self, seed: int = 0, C: float = 1.0) -> None:
        self.seed = seed
        self.C = C
        self._pipeline: Pipeline | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> PersonaClassifier:
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        distinct = sorted(set(labels))
        if len(distinct) < 2:
            found = f"only {distinct[0]!r}" if distinct else "none"
            raise PersonaForgeError(f"persona attribution needs training completions of at least two personas "
                                    f"(found {found}); add another persona or skip attribution")
        features = FeatureUnion([
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), lowercase=True, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=True, sublinear_tf=True)),
        ])
        self._pipeline = Pipeline([("features", features),
                                   ("svm", LinearSVC(C=self.C, random_state=self.seed))])
        self._pipeline.fit(list(texts), list(labels))
        return self

    @property
    def labels(self) -> list[str]:
        """The personas it can predict, sorted."""
        return [str(label) for label in self._fitted().classes_]

    def predict(self, texts: Sequence[str]) -> list[str]:
        if not texts:
            return []
        return [str(label) for label in self._fitted().predict(list(texts))]

    def _fitted(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("PersonaClassifier.fit() must be called before predict()")
        return self._pipeline


def attribution_report(
    classifier: PersonaClassifier,
    predictions: Sequence[str],
    true_personas: Sequence[str],
    labels: Sequence[str] | None = None,
) -> dict[str, object]:
    """Accuracy, macro-F1 and confusion matrix of the classifier on generated answers.

    ``labels`` fixes the row/column order of the confusion matrix (default: the classifier's personas,
    then any true persona it never saw, which it necessarily gets wrong). ``matrix[i][j]`` counts answers
    of persona ``labels[i]`` labelled ``labels[j]``. Macro-F1 averages over ``labels``.
    """
    if len(predictions) != len(true_personas):
        raise ValueError(f"{len(predictions)} predictions but {len(true_personas)} personas")
    if not predictions:
        raise PersonaForgeError("no answers to attribute: the eval set is empty; check the eval file")
    predicted = classifier.predict(predictions)
    if labels is None:
        labels = classifier.labels + sorted(set(true_personas) - set(classifier.labels))
    labels = list(labels)
    matrix = confusion_matrix(list(true_personas), predicted, labels=labels)
    return {
        "accuracy": float(np.mean([p == t for p, t in zip(predicted, true_personas, strict=True)])),
        "macro_f1": float(f1_score(list(true_personas), predicted, labels=labels, average="macro",
                                   zero_division=0)),
        "confusion": {"labels": labels, "matrix": matrix.astype(int).tolist()},
        "n": len(predictions),
    }


def blending_index(
    probes: Mapping[str, Mapping[str, str]], embedder: Embedder | None = None
) -> dict[str, float | int]:
    """How much the personas' answers blend, from cross-persona probes.

    ``probes`` maps question id -> {persona: answer} (each eval question put to every persona). With
    cosines of unit MiniLM embeddings:

    * B = mean cosine over all pairs of different personas' answers to the same question;
    * W = mean cosine over all pairs of one persona's answers to different questions;
    * index = (B - W) / (1 - W).

    1 means every persona answers every question identically; 0 means two personas answering the same
    question are no more alike than one persona answering unrelated questions; negative means persona
    outweighs question. Answers to the same question share a topic, so real distinct people still score
    above 0: compare runs (fine-tuned vs its baseline) rather than reading the number alone. Pairs are
    pooled (every pair weighs the same). When W is 1 (each persona repeats one answer whatever the
    question) the formula is undefined: the index is then 1 if B is 1 too, else B - W.
    """
    personas = sorted({persona for answers in probes.values() for persona in answers})
    questions = [q for q in probes if probes[q]]
    texts = sorted({answer for answers in probes.values() for answer in answers.values()})
    vectors = dict(zip(texts, (embedder or default_embedder()).embed(texts), strict=True))

    def cosine(a: str, b: str) -> float:
        return float(vectors[a] @ vectors[b])

    between = [cosine(probes[q][p], probes[q][r]) for q in questions for p, r in combinations(sorted(probes[q]), 2)]
    within = [cosine(probes[q][p], probes[s][p]) for p in personas
              for q, s in combinations([q for q in questions if p in probes[q]], 2)]
    if not between:
        raise PersonaForgeError("blending index needs answers of at least two personas to the same question; "
                                "with one persona, skip it")
    if not within:
        raise PersonaForgeError("blending index needs at least two probe questions answered by the same persona")
    b, w = float(np.mean(between)), float(np.mean(within))
    if w < 1.0 - 1e-6:
        index = (b - w) / (1.0 - w)
    else:
        index = 1.0 if b >= 1.0 - 1e-6 else b - w
    return {"blending_index": index, "between": b, "within": w,
            "questions": len(questions), "personas": len(personas)}
