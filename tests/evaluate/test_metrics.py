"""Metrics against hand-computed values, against rouge-score / sacrebleu directly, and against the
original pipeline's BLEU definition (evaluate's bleu = tensorflow/nmt compute_bleu over 13a tokens)."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from personaforge.errors import PersonaForgeError
from personaforge.evaluate import metrics
from personaforge.evaluate.metrics import (
    CORPUS_METRICS,
    DEFINITIONS,
    MEAN_METRICS,
    ORIGINAL_METRICS,
    OUR_METRICS,
    SENTENCE_METRICS,
    aggregate,
    confidence_intervals,
    corpus_statistics,
    score_samples,
)

REFS = [
    "The lamp turns every ten seconds and I count each one when the fog rolls in.",
    "Bread wants patience, and the dough tells you when it is ready.",
    "My father kept this light for thirty years.",
    "Salt matters more than people think; too little and the crust tastes of cardboard.",
    "We pick the tea by hand at dawn, two leaves and a bud.",
    "No exams here. Children learn because they are curious.\nThat is the whole school.",
]
PREDS = [
    "The lamp turns every ten seconds, and I count them when fog comes in.",
    "Bread needs patience; the dough tells you when it's ready.",
    "My father kept the light for thirty long years.",
    "Salt matters a lot.",
    "",
    "There are no exams. Children learn because they are curious.\nThat is our school.",
]


# ------------------------------------------------------------- the original pipeline's BLEU, verbatim

def _get_ngrams(segment: list[str], max_order: int) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for order in range(1, max_order + 1):
        for i in range(len(segment) - order + 1):
            counts[tuple(segment[i:i + order])] += 1
    return counts


def nmt_compute_bleu(reference_corpus, translation_corpus, max_order=4, smooth=False) -> float:
    """evaluate's bleu (tensorflow/nmt compute_bleu): clipped n-gram precisions, geometric mean, BP."""
    matches_by_order = [0] * max_order
    possible_matches_by_order = [0] * max_order
    reference_length = 0
    translation_length = 0
    for references, translation in zip(reference_corpus, translation_corpus):
        reference_length += min(len(r) for r in references)
        translation_length += len(translation)
        merged_ref_ngram_counts: collections.Counter = collections.Counter()
        for reference in references:
            merged_ref_ngram_counts |= _get_ngrams(reference, max_order)
        overlap = _get_ngrams(translation, max_order) & merged_ref_ngram_counts
        for ngram in overlap:
            matches_by_order[len(ngram) - 1] += overlap[ngram]
        for order in range(1, max_order + 1):
            possible_matches = len(translation) - order + 1
            if possible_matches > 0:
                possible_matches_by_order[order - 1] += possible_matches
    precisions = [0.0] * max_order
    for i in range(max_order):
        if smooth:
            precisions[i] = (matches_by_order[i] + 1.0) / (possible_matches_by_order[i] + 1.0)
        elif possible_matches_by_order[i] > 0:
            precisions[i] = matches_by_order[i] / possible_matches_by_order[i]
    geo_mean = math.exp(sum(math.log(p) / max_order for p in precisions)) if min(precisions) > 0 else 0.0
    ratio = translation_length / reference_length
    bp = 1.0 if ratio > 1.0 else math.exp(1 - 1.0 / ratio)
    return geo_mean * bp


def evaluate_bleu(predictions: list[str], references: list[str]) -> float:
    """evaluate.load("bleu").compute(...)["bleu"]: 13a tokens, max order 4, smooth=False."""
    tokenize = Tokenizer13a()
    return nmt_compute_bleu([[tokenize(r).split()] for r in references], [tokenize(p).split() for p in predictions])


def our_bleu(predictions: list[str], references: list[str]) -> float:
    return corpus_statistics(predictions, references)["bleu"].value()


BLEU_CASES = {
    "realistic corpus": (PREDS, REFS),
    "punctuation and brevity penalty": (["Hello, world!", "It's 3.5 km (roughly)."],
                                        ["Hello, world! How are you?", "It's 3.5 km (roughly) from here."]),
    "longer than reference": (["a b c d e f g h"], ["a b c d e"]),
    "no 4-gram matches anywhere -> 0": (["the cat sat on a mat", "a dog ran"],
                                        ["the cat is on the mat", "a dog walked"]),
    "predictions too short for 4-grams -> 0": (["the cat", "a dog ran"], ["the cat sat", "a dog ran off"]),
    "one empty prediction": (["", "a b c d e"], ["x y z", "a b c d e"]),
}


@pytest.mark.parametrize("case", BLEU_CASES)
def test_bleu_equals_the_original_pipelines_definition(case):
    predictions, references = BLEU_CASES[case]
    expected = evaluate_bleu(predictions, references)
    assert our_bleu(predictions, references) == pytest.approx(expected, abs=1e-12)
    assert our_bleu(predictions, references) == pytest.approx(
        sacrebleu.corpus_bleu(predictions, [references], tokenize="13a", smooth_method="none").score / 100, abs=1e-12)
    if "-> 0" in case:
        assert expected == 0.0


def test_bleu_by_hand():
    # Every n-gram of the 5-word prediction matches; only the brevity penalty exp(1 - 6/5) remains.
    assert our_bleu(["a b c d e"], ["a b c d e f"]) == pytest.approx(math.exp(1 - 6 / 5))
    assert our_bleu(["a b c d e"], ["a b c d e"]) == pytest.approx(1.0)


def test_all_empty_predictions_score_zero_where_evaluate_divided_by_zero():
    with pytest.raises(ZeroDivisionError):
        evaluate_bleu(["", ""], ["a b", "c d"])
    stats = corpus_statistics(["", ""], ["a b", "c d"])
    assert {name: stat.value() for name, stat in stats.items()} == {
        "bleu": 0.0, "chrf": 0.0, "distinct_1": 0.0, "distinct_2": 0.0}


def test_chrf_equals_sacrebleu_corpus_chrf():
    assert corpus_statistics(PREDS, REFS)["chrf"].value() == pytest.approx(
        sacrebleu.corpus_chrf(PREDS, [REFS]).score / 100, abs=1e-12)


def test_sentence_scores_equal_sacrebleu_sentence_scores(embedder):
    samples = score_samples(PREDS, REFS, embedder=embedder)
    for sample, pred, ref in zip(samples, PREDS, REFS):
        assert sample["sentence_chrf"] == pytest.approx(sacrebleu.sentence_chrf(pred, [ref]).score / 100)
        assert sample["sentence_bleu"] == pytest.approx(sacrebleu.sentence_bleu(pred, [ref]).score / 100)


# ------------------------------------------------------------------------------------------ ROUGE

def test_rouge_by_hand():
    # ref "the cat is on the mat", pred "the cat sat on the mat": 6 tokens each.
    scores = metrics.rouge("the cat sat on the mat", "the cat is on the mat")
    assert scores["rouge1"] == pytest.approx(5 / 6)   # the x2, cat, on, mat
    assert scores["rouge2"] == pytest.approx(3 / 5)   # the-cat, on-the, the-mat of 5 bigrams each
    assert scores["rougeL"] == pytest.approx(5 / 6)   # LCS "the cat on the mat"
    # Unequal lengths: P = 2/2, R = 2/4, F = 2PR/(P+R) = 2/3.
    assert metrics.rouge("cat mat", "the cat the mat")["rouge1"] == pytest.approx(2 / 3)


def test_rouge_equals_rouge_score_directly():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=False)
    for pred, ref in zip(PREDS, REFS):
        expected = scorer.score(ref, pred)
        assert metrics.rouge(pred, ref) == {name: expected[name].fmeasure for name in expected}


def test_rougelsum_splits_at_newlines_and_stemmer_is_opt_in():
    pred, ref = "children learn\nno exams here", "no exams here\nchildren learn"
    assert metrics.rouge(pred, ref)["rougeLsum"] == pytest.approx(1.0)  # each sentence matched on its own
    assert metrics.rouge(pred, ref)["rougeL"] < 1.0                     # one LCS over the whole text
    assert metrics.rouge("running dogs", "run dog")["rouge1"] == 0.0
    assert metrics.rouge("running dogs", "run dog", use_stemmer=True)["rouge1"] == pytest.approx(1.0)


# ------------------------------------------------------------------------------- words and n-grams

def test_exact_match_strips_whitespace_but_keeps_case():
    assert metrics.exact_match("  Hello there.\n", "Hello there.") == 1.0
    assert metrics.exact_match("hello there.", "Hello there.") == 0.0
    assert metrics.exact_match("", "") == 1.0


def test_jaccard_by_hand():
    assert metrics.jaccard_overlap("The cat sat", "the cat ran") == pytest.approx(2 / 4)  # {the,cat} / 4 words
    assert metrics.jaccard_overlap("a a b", "A") == pytest.approx(1 / 2)                  # sets, not counts
    assert metrics.jaccard_overlap("cat.", "cat") == 0.0                                  # whitespace tokens only
    assert metrics.jaccard_overlap("", "") == 0.0


def test_length_ratio_and_distinct_by_hand():
    assert metrics.length_ratio("a b c", "a b c d e f") == pytest.approx(0.5)
    assert metrics.length_ratio("a b", "") == pytest.approx(2.0)  # no reference words counts as one
    # unigrams a b a | a c: 3 unique of 5; bigrams a-b b-a | a-c: 3 of 3 (none spans two answers)
    stats = corpus_statistics(["a b a", "A c"], ["x", "y"])
    assert stats["distinct_1"].value() == pytest.approx(3 / 5)
    assert stats["distinct_2"].value() == pytest.approx(3 / 3)
    assert metrics.distinct_n(["a b a", "A c"], 1) == pytest.approx(3 / 5)


# ------------------------------------------------------------------------------- semantic similarity

def test_semantic_similarity_ranks_paraphrases_and_zeroes_empty_answers(embedder):
    ref = "The children at my school never sit an exam."
    same, paraphrase, unrelated = ref, "Pupils in my school do not take any exams.", "Tea bushes need acid soil."
    scores = metrics.semantic_similarities([same, paraphrase, unrelated, ""], [ref] * 4, embedder)
    assert scores[0] == pytest.approx(1.0, abs=1e-5)
    assert scores[1] > 0.6 and scores[2] < 0.2
    assert scores[3] == 0.0


def test_embeddings_equal_sentence_transformers(embedder):
    # Golden values from SentenceTransformer(bundled_minilm_dir()).encode(texts, normalize_embeddings=True)
    # (sentence-transformers 6.2): the same pipeline, checked without importing it at test time (~4 s).
    texts = ["A short one.", "A much longer sentence about tea gardens, rain, and the smell of the factory."]
    expected = [[0.000321, 0.072015, -0.001241, 0.012823, -0.055118, 0.019202],
                [0.025993, 0.028427, 0.127655, 0.012534, 0.11731, 0.022427]]
    vectors = embedder.embed(texts)
    np.testing.assert_allclose(vectors[:, :6], expected, atol=2e-5)
    assert float(vectors[0] @ vectors[1]) == pytest.approx(0.239663, abs=2e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_each_text_is_embedded_once(embedder):
    before = embedder.encoded_count
    first = embedder.embed(["cache one", "cache two", "cache one"])
    assert embedder.encoded_count - before == 2
    second = embedder.embed(["cache two", "cache one", "cache three"])
    assert embedder.encoded_count - before == 3
    np.testing.assert_array_equal(first[0], second[1])


# ------------------------------------------------------------------------------- samples and aggregate

def test_an_empty_prediction_scores_zero_and_does_not_crash(embedder):
    sample = score_samples([""], ["Two leaves and a bud."], embedder=embedder)[0]
    assert list(sample) == [*MEAN_METRICS, *SENTENCE_METRICS]
    assert all(value == 0.0 for value in sample.values()), sample


def test_aggregate_keys_order_and_definitions(embedder):
    samples = score_samples(PREDS, REFS, embedder=embedder)
    values = aggregate(PREDS, REFS, samples)
    assert list(values) == [*ORIGINAL_METRICS, *OUR_METRICS]
    assert list(values)[:7] == ["exact_match", "avg_jaccard_overlap", "rouge1", "rouge2", "rougeL", "rougeLsum",
                                "bleu"]
    for name in MEAN_METRICS:
        assert values[name] == pytest.approx(np.mean([s[name] for s in samples]))
    for name in CORPUS_METRICS:
        assert values[name] == corpus_statistics(PREDS, REFS)[name].value()
    assert values["bleu"] == pytest.approx(evaluate_bleu(PREDS, REFS))
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for k, v in values.items() if k != "length_ratio")
    missing = [name for name in (*values, *SENTENCE_METRICS) if name not in DEFINITIONS]
    assert not missing


def test_confidence_intervals_cover_every_aggregate(embedder):
    samples = score_samples(PREDS, REFS, embedder=embedder)
    values = aggregate(PREDS, REFS, samples)
    intervals = confidence_intervals(PREDS, REFS, samples, n=200)
    assert list(intervals) == list(values)
    for name, (lo, hi) in intervals.items():
        assert lo <= values[name] + 1e-12 and values[name] <= hi + 1e-12, (name, lo, values[name], hi)
    assert intervals == confidence_intervals(PREDS, REFS, samples, n=200)


def test_empty_eval_set_is_a_user_error():
    with pytest.raises(PersonaForgeError, match="eval set is empty"):
        score_samples([], [])


def test_real_answer_level_scores_the_same_personas_other_answers_against_each_reference(embedder):
    references = ["The bees stay in the hive all winter.", "Kelp grows fast in spring.", "Jazz is listening."]
    personas = ["Tomas", "Leila", "Nobody"]
    answers = [("Tomas", "The bees stay in the hive all winter."), ("Tomas", "Honey sells at the market."),
               ("Leila", "Urchins eat the kelp."), ("Leila", "  "), ("Odile", "The bees stay in the hive.")]
    level = metrics.real_answer_level(references, personas, answers, embedder)
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    # The reference itself is not one of its persona's other answers; a persona without answers is left out;
    # another persona's answers never count.
    assert level["rouge1"] == pytest.approx([
        scorer.score(references[0], "Honey sells at the market.")["rouge1"].fmeasure,
        scorer.score(references[1], "Urchins eat the kelp.")["rouge1"].fmeasure])
    expected = [float(embedder.embed(["Honey sells at the market."])[0] @ embedder.embed([references[0]])[0]),
                float(embedder.embed(["Urchins eat the kelp."])[0] @ embedder.embed([references[1]])[0])]
    assert level["semantic_similarity"] == pytest.approx(expected, abs=1e-6)


def test_real_answer_level_samples_a_seeded_pool_of_a_talkative_persona(embedder, monkeypatch):
    import itertools

    monkeypatch.setattr(metrics, "REAL_ANSWER_POOL", 3)
    reference = "the lamp turns at night over the rocks"
    answers = [("Ada", text) for text in ["the lamp", "night", "rocks and the sea", "over the hill", "a boat",
                                           "the lamp turns", "storms at night", "bread"]]
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    scores = [scorer.score(reference, text)["rouge1"].fmeasure for _, text in answers]
    subset_means = [np.mean(c) for c in itertools.combinations(scores, 3)]
    levels = [metrics.real_answer_level([reference], ["Ada"], answers, embedder, seed=s)["rouge1"][0]
              for s in range(6)]
    assert levels[0] == metrics.real_answer_level([reference], ["Ada"], answers, embedder, seed=0)["rouge1"][0]
    assert all(any(level == pytest.approx(m) for m in subset_means) for level in levels)  # 3 answers each
    assert len({round(level, 9) for level in levels}) > 1  # and which three depends on the seed


def test_retrieval_level_scores_the_persona_answer_that_best_fits_each_question(embedder):
    questions = ["How do the bees survive the winter?", "What eats the kelp?", "Anything at all?"]
    references = ["In winter the bees cluster together and eat their honey.", "Urchins eat it down to rock.",
                  "Jazz is listening."]
    personas = ["Tomas", "Leila", "Nobody"]
    bees = "The bees keep warm in winter by clustering in the hive."
    honey = "Honey sells well at the Saturday market in town."
    urchins = "Sea urchins graze the kelp until the reef is bare."
    answers = [("Tomas", honey), ("Tomas", bees), ("Tomas", bees), ("Leila", "The boat leaves at six."),
               ("Leila", urchins), ("Odile", "Bees in winter, bees in the hive, winter bees.")]
    level = metrics.retrieval_level(questions, references, personas, answers, embedder)
    scorer = rouge_scorer.RougeScorer(["rouge1"])
    # The answer chosen is the one that fits the question, not the first or the most similar to the reference,
    # from the asked persona only (never Odile's); a persona without answers is left out.
    assert level["rouge1"] == pytest.approx([scorer.score(references[0], bees)["rouge1"].fmeasure,
                                             scorer.score(references[1], urchins)["rouge1"].fmeasure])
    expected = [float(embedder.embed([bees])[0] @ embedder.embed([references[0]])[0]),
                float(embedder.embed([urchins])[0] @ embedder.embed([references[1]])[0])]
    assert level["semantic_similarity"] == pytest.approx(expected, abs=1e-6)


def test_retrieval_level_never_finds_the_reference_itself(embedder):
    reference = "The bees keep warm in winter by clustering in the hive."
    other = "Honey sells well at the Saturday market in town."
    level = metrics.retrieval_level(["How do bees survive winter?"], [reference], ["Tomas"],
                                    [("Tomas", reference), ("Tomas", other)], embedder)
    assert level["rouge1"] == pytest.approx([rouge_scorer.RougeScorer(["rouge1"]).score(reference, other)["rouge1"]
                                             .fmeasure])
