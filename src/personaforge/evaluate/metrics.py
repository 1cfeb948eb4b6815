"""Per-sample and aggregate metrics of predictions against references.

The original pipeline's metrics keep its exact definitions so our numbers compare with its published
results (it used the Hub's ``evaluate`` rouge and bleu, which need the network; we compute the same
definitions with ``rouge_score`` and ``sacrebleu`` offline). Ours follow. :data:`DEFINITIONS` states each
one in a sentence; it is written into metrics.json next to the numbers.

Where we differ from ``evaluate`` (knowingly, in edge cases only):

* its rouge by default reported the median of 1,000 unseeded bootstrap means (``BootstrapAggregator``
  "mid"), which differs from the plain mean we report by random noise (up to about 0.002 on 62
  samples, measured), so its published ROUGE figures carry that much jitter;
* its bleu raised ZeroDivisionError when every prediction (or reference) was empty; ours is 0;
* sacrebleu strips trailing whitespace before 13a tokenization, so a text ending in "-\n" keeps its
  hyphen ("foo-") where evaluate's tokenizer removed it with the line break ("foo").

An empty prediction is a valid sample: it scores 0 on every metric except ``exact_match`` against an
empty reference.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import cache
from itertools import chain

import numpy as np
from rouge_score import rouge_scorer
from sacrebleu.metrics import BLEU, CHRF

from personaforge.embeddings import Embedder, bundled_minilm_dir, default_embedder  # noqa: F401 (re-exported)
from personaforge.errors import PersonaForgeError
from personaforge.evaluate.stats import ALPHA, N_RESAMPLES, SEED, CorpusStatistic, bootstrap_ci

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ORIGINAL_METRICS = ("exact_match", "avg_jaccard_overlap", *ROUGE_TYPES, "bleu")
OUR_METRICS = ("chrf", "semantic_similarity", "length_ratio", "distinct_1", "distinct_2")
# The aggregate of a mean metric is the mean of its per-sample values (same key in both).
MEAN_METRICS = ("exact_match", "avg_jaccard_overlap", *ROUGE_TYPES, "semantic_similarity", "length_ratio")
# A corpus metric is computed on the whole set at once; it is not the mean of any per-sample value.
CORPUS_METRICS = ("bleu", "chrf", "distinct_1", "distinct_2")
# Per-sample stand-ins for corpus metrics, for ranking samples in reports only.
SENTENCE_METRICS = ("sentence_bleu", "sentence_chrf")

REAL_ANSWER_POOL = 200  # real answers per persona: the level costs samples × pool ROUGE computations

DEFINITIONS: dict[str, str] = {
    "exact_match": "Share of samples whose prediction equals the reference after stripping surrounding "
    "whitespace (case-sensitive).",
    "avg_jaccard_overlap": "Mean over samples of |A∩B|/|A∪B| for the sets of lower-cased whitespace-separated "
    "tokens of prediction (A) and reference (B); 0 when both are empty.",
    "rouge1": "Mean over samples of the ROUGE-1 F-measure (rouge-score RougeScorer, no stemmer, its default "
    "lower-case alphanumeric tokenizer), as the original pipeline's evaluate rouge.",
    "rouge2": "Mean over samples of the ROUGE-2 (bigram) F-measure, computed as rouge1.",
    "rougeL": "Mean over samples of the ROUGE-L (longest common subsequence) F-measure, computed as rouge1.",
    "rougeLsum": "Mean over samples of the summary-level ROUGE-L F-measure with sentences split at newlines, "
    "computed as rouge1.",
    "bleu": "Corpus BLEU on a 0-1 scale: 13a tokenization, n-grams up to 4, no smoothing, brevity penalty "
    "(sacrebleu; equal to the original pipeline's evaluate bleu); 0 when any n-gram order has no match.",
    "chrf": "Corpus chrF on a 0-1 scale (sacrebleu CHRF defaults: character n-grams up to 6, beta 2).",
    "semantic_similarity": "Mean over samples of the cosine similarity of all-MiniLM-L6-v2 sentence embeddings "
    "(mean-pooled, normalised, first 256 word pieces) of prediction and reference; 0 when either is empty.",
    "length_ratio": "Mean over samples of prediction words / reference words (whitespace words; a reference "
    "with no words counts as 1).",
    "distinct_1": "Unique word unigrams / all word unigrams over all predictions together (lower-cased "
    "whitespace tokens); 0 when there are none.",
    "distinct_2": "Unique word bigrams / all word bigrams over all predictions together (bigrams within one "
    "prediction; lower-cased whitespace tokens); 0 when there are none.",
    "sentence_bleu": "BLEU of one sample (13a tokenization, exponential smoothing, effective order), 0-1; "
    "for ranking samples only, the aggregate is corpus bleu.",
    "sentence_chrf": "chrF of one sample, 0-1; for ranking samples only, the aggregate is corpus chrf.",
    "real_answer_level": "For scale, not a score of the model: for each eval sample, the mean rouge1 and "
    "semantic_similarity of the same persona's real training answers (said to other questions; at most "
    f"{REAL_ANSWER_POOL} per persona, seeded) against its reference: what the person's own words reach "
    "without knowing the held-out content.",
    "retrieval_level": "For scale, not a score of the model: for each eval sample, the rouge1 and "
    "semantic_similarity against its reference of the one real training answer of the same persona whose opening "
    "fits the question best (all-MiniLM-L6-v2 cosine, as the data build pairs questions with passages): what a "
    "search of the person's own words by the question reaches.",
    # attribution.py computes these; they live here so metrics.json takes every definition from one dict.
    "attribution_accuracy": "Share of answers that a TF-IDF (word 1-2-grams + character 2-5-grams) linear SVM, "
    "trained on the training completions, labels with the persona they were generated for.",
    "attribution_macro_f1": "Unweighted mean over personas of the attribution classifier's F1.",
    "attribution": "Per sample 1 when the attribution classifier labels the answer with the persona it was "
    "generated for, else 0; its mean is attribution_accuracy (ranked with --metric attribution).",
    "cross_attribution": "Per sample, the share of the other personas' answers to its question (the cross-persona "
    "probes: the same question put to each other persona) that the attribution classifier labels with the persona "
    "that answered: whether a persona keeps its own voice on a question meant for someone else (ranked with "
    "--metric cross_attribution). An untuned model answers the question's topic, so its probes are labelled with "
    "the persona the question came from.",
    "blending_index": "(B - W) / (1 - W) over all-MiniLM-L6-v2 cosines, where B is the mean cosine between "
    "different personas' answers to the same question and W the mean cosine between one persona's answers "
    "to different questions: 1 when every persona gives the same answer, 0 when answers to the same "
    "question are no more alike across personas than one persona's unrelated answers; lower is more distinct.",
}


# ---------------------------------------------------------------------------------------------- words

def _words(text: str) -> list[str]:
    return text.lower().split()


def exact_match(prediction: str, reference: str) -> float:
    return float(prediction.strip() == reference.strip())


def jaccard_overlap(prediction: str, reference: str) -> float:
    a, b = set(_words(prediction)), set(_words(reference))
    union = a | b
    # Both empty: 0, like every other overlap metric here (rouge-score also gives 0/0 as 0).
    return len(a & b) / len(union) if union else 0.0


def length_ratio(prediction: str, reference: str) -> float:
    return len(prediction.split()) / max(len(reference.split()), 1)


def _ngrams(tokens: list[str], order: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + order]) for i in range(len(tokens) - order + 1)]


def distinct_n(predictions: Sequence[str], order: int) -> float:
    grams = list(chain.from_iterable(_ngrams(_words(p), order) for p in predictions))
    return len(set(grams)) / len(grams) if grams else 0.0


# ---------------------------------------------------------------------------------------------- rouge

@cache
def _rouge_scorer(use_stemmer: bool) -> rouge_scorer.RougeScorer:
    # split_summaries=False: rougeLsum splits at newlines, as evaluate's rouge does.
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer, split_summaries=False)


def rouge(prediction: str, reference: str, use_stemmer: bool = False) -> dict[str, float]:
    scores = _rouge_scorer(use_stemmer).score(reference, prediction)  # (target, prediction) order
    return {name: float(scores[name].fmeasure) for name in ROUGE_TYPES}


# ------------------------------------------------------------------------------- bleu / chrf (sacrebleu)

def _corpus_bleu() -> BLEU:
    return BLEU(tokenize="13a", smooth_method="none", max_ngram_order=4)


def _sentence_bleu() -> BLEU:
    return BLEU(tokenize="13a", smooth_method="exp", effective_order=True)


def _segment_stats(metric: BLEU | CHRF, predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """sacrebleu's per-sample sufficient statistics, one row per sample.

    Corpus BLEU and chrF are functions of these rows summed, so a bootstrap resample only re-sums rows
    instead of re-tokenizing the corpus (this is also how sacrebleu's own significance tests work).
    """
    # Private methods, but sacrebleu's own bootstrap uses them and they are stable across 2.x (pinned <3);
    # tests compare the results with the public corpus_bleu / corpus_chrf.
    stats = metric._extract_corpus_statistics(list(predictions), [list(references)])
    return np.asarray(stats, dtype=np.int64).reshape(len(predictions), -1)


def _score(metric: BLEU | CHRF, summed_stats: np.ndarray) -> float:
    return float(metric._compute_score_from_stats([int(x) for x in summed_stats]).score) / 100.0


# ---------------------------------------------------------------------------------------- embeddings

def real_answer_level(references: Sequence[str], personas: Sequence[str], answers: Sequence[tuple[str, str]],
                      embedder: Embedder | None = None, seed: int = SEED) -> dict[str, list[float]]:
    """Per eval sample, the mean ROUGE-1 F and semantic similarity of its persona's real ``answers`` ((persona,
    text) pairs, e.g. the training split's extracted answers) against its reference.

    Samples whose persona has no real answers are left out, so the lists can be shorter than ``references``.
    """
    if len(references) != len(personas):
        raise ValueError(f"{len(references)} references but {len(personas)} personas")
    pools: dict[str, list[str]] = {}
    for persona, text in answers:
        if text.strip():
            pools.setdefault(persona, []).append(text)
    rng = np.random.default_rng(seed)
    for persona, pool in pools.items():
        if len(pool) > REAL_ANSWER_POOL:
            pools[persona] = [pool[i] for i in sorted(rng.choice(len(pool), REAL_ANSWER_POOL, replace=False))]
    # rouge1 only, not _rouge_scorer's four types: samples × pool pairs, and ROUGE-L's LCS is the costly part.
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    embedder = embedder or default_embedder()
    level: dict[str, list[float]] = {"rouge1": [], "semantic_similarity": []}
    for reference, persona in zip(references, personas):
        # The reference itself is not one of the "other" answers (evaluating --split train).
        pool = [text for text in pools.get(persona, ()) if text.strip() != reference.strip()]
        if not pool or not reference.strip():
            continue
        level["rouge1"].append(float(np.mean([scorer.score(reference, text)["rouge1"].fmeasure for text in pool])))
        cosines = embedder.embed(pool) @ embedder.embed([reference])[0]
        level["semantic_similarity"].append(float(np.mean(cosines)))
    return level


def retrieval_level(questions: Sequence[str], references: Sequence[str], personas: Sequence[str],
                    answers: Sequence[tuple[str, str]], embedder: Embedder | None = None) -> dict[str, list[float]]:
    """Per eval sample, the ROUGE-1 F and semantic similarity against its reference of the persona's real answer
    (from ``answers``, (persona, text) pairs) that best fits its question.

    A model that only looked the person up would answer this way, so a fine-tune that does not clear this level
    has learned no more than a search would find. Fit is scored on an answer's opening, as the data build pairs
    questions with passages. Samples whose persona has no real answers are left out.
    """
    from personaforge.dataset.retrieval import question_fits  # the data build's fit, so both mean the same

    if not len(questions) == len(references) == len(personas):
        raise ValueError(f"{len(questions)} questions, {len(references)} references, {len(personas)} personas")
    distinct: dict[str, dict[str, None]] = {}  # per persona, its answers once each, in order
    for persona, text in answers:
        if text.strip():
            distinct.setdefault(persona, {})[text] = None
    pools = {persona: list(texts) for persona, texts in distinct.items()}
    embedder = embedder or default_embedder()
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False)
    found, scored = [], []
    for question, reference, persona in zip(questions, references, personas):
        pool = [text for text in pools.get(persona, ()) if text.strip() != reference.strip()]
        if pool and reference.strip():
            found.append(pool[int(np.argmax(question_fits(embedder, question, pool)))])
            scored.append(reference)
    return {"rouge1": [float(scorer.score(r, f)["rouge1"].fmeasure) for f, r in zip(found, scored)],
            "semantic_similarity": semantic_similarities(found, scored, embedder)}


def semantic_similarities(
    predictions: Sequence[str], references: Sequence[str], embedder: Embedder | None = None
) -> list[float]:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    embedder = embedder or default_embedder()
    preds, refs = embedder.embed(predictions), embedder.embed(references)
    cosines = (preds * refs).sum(axis=1)
    # An empty text still embeds to some vector; an empty answer must score 0, not its chance cosine.
    return [float(c) if p.strip() and r.strip() else 0.0 for c, p, r in zip(cosines, predictions, references, strict=True)]


# ---------------------------------------------------------------------------------------- public API

def _check_pairs(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise PersonaForgeError("no samples to score: the eval set is empty; check the eval file and --max-samples")


def score_samples(
    predictions: Sequence[str],
    references: Sequence[str],
    *,
    use_stemmer: bool = False,
    embedder: Embedder | None = None,
) -> list[dict[str, float]]:
    """Per-sample scores: every MEAN_METRICS key plus sentence_bleu and sentence_chrf, in that order."""
    _check_pairs(predictions, references)
    bleu_stats = _segment_stats(_corpus_bleu(), predictions, references)
    chrf = CHRF()
    chrf_stats = _segment_stats(chrf, predictions, references)
    sentence_bleu = _sentence_bleu()
    similarities = semantic_similarities(predictions, references, embedder)
    samples = []
    for i, (pred, ref) in enumerate(zip(predictions, references, strict=True)):
        rouges = rouge(pred, ref, use_stemmer)
        samples.append({
            "exact_match": exact_match(pred, ref),
            "avg_jaccard_overlap": jaccard_overlap(pred, ref),
            **rouges,
            "semantic_similarity": similarities[i],
            "length_ratio": length_ratio(pred, ref),
            "sentence_bleu": _score(sentence_bleu, bleu_stats[i]),
            "sentence_chrf": _score(chrf, chrf_stats[i]),
        })
    return samples


def _summed(metric: BLEU | CHRF, stats: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda indices: _score(metric, stats[indices].sum(axis=0))


def _distinct(predictions: Sequence[str], order: int) -> Callable[[np.ndarray], float]:
    """distinct-n as a resamplable statistic, linearised with jackknife pseudo-values.

    Recomputing distinct-n on a resample is biased: about a third of a resample's answers are repeats,
    which add n-grams but no new ones (measured on 62 synthetic answers: distinct-2 of 0.99 resampled to
    0.54-0.72). Instead each sample gets its jackknife pseudo-value ``N*d - (N-1)*d_without_it``, and a
    resample's value is ``d + mean(pseudo[indices]) - mean(pseudo)``: exactly d on the full set, and a
    spread matching the jackknife standard error. Simulated with 62 Zipf-worded answers per eval set: the
    intervals' spread was 7-12% above the true spread over 300 fresh eval sets, and they covered the true
    mean 95% (distinct-1) and 97.5% (distinct-2) of 40 times; recomputing on resamples was 1.5-4 times
    too wide and excluded the estimate itself.
    """
    grams = [_ngrams(_words(p), order) for p in predictions]
    counts: Counter[tuple[str, ...]] = Counter(chain.from_iterable(grams))
    total, unique = counts.total(), len(counts)
    full = unique / total if total else 0.0
    size = len(predictions)
    pseudo = np.empty(size)
    for i, sample_grams in enumerate(grams):
        own = Counter(sample_grams)
        # Leaving sample i out loses exactly the n-grams that occur nowhere else.
        rest_total = total - len(sample_grams)
        rest_unique = unique - sum(1 for g, c in own.items() if counts[g] == c)
        without = rest_unique / rest_total if rest_total else 0.0
        pseudo[i] = size * full - (size - 1) * without
    offset = full - float(pseudo.mean())

    def compute(indices: np.ndarray) -> float:
        return float(pseudo[indices].mean()) + offset

    return compute


def corpus_statistics(predictions: Sequence[str], references: Sequence[str]) -> dict[str, CorpusStatistic]:
    """The corpus metrics (bleu, chrf, distinct_1, distinct_2) as resamplable statistics."""
    _check_pairs(predictions, references)
    size = len(predictions)
    bleu, chrf = _corpus_bleu(), CHRF()
    return {
        "bleu": CorpusStatistic(size, _summed(bleu, _segment_stats(bleu, predictions, references))),
        "chrf": CorpusStatistic(size, _summed(chrf, _segment_stats(chrf, predictions, references))),
        "distinct_1": CorpusStatistic(size, _distinct(predictions, 1)),
        "distinct_2": CorpusStatistic(size, _distinct(predictions, 2)),
    }


def aggregate(
    predictions: Sequence[str], references: Sequence[str], per_sample: Sequence[dict[str, float]]
) -> dict[str, float]:
    """Corpus values: the original pipeline's keys first (ORIGINAL_METRICS), then ours (OUR_METRICS)."""
    _check_pairs(predictions, references)
    if len(per_sample) != len(predictions):
        raise ValueError(f"{len(per_sample)} per-sample scores for {len(predictions)} predictions")
    corpus = corpus_statistics(predictions, references)
    values: dict[str, float] = {}
    for name in (*ORIGINAL_METRICS, *OUR_METRICS):
        if name in corpus:
            values[name] = corpus[name].value()
        else:
            values[name] = float(np.mean([sample[name] for sample in per_sample]))
    return values


def confidence_intervals(
    predictions: Sequence[str],
    references: Sequence[str],
    per_sample: Sequence[dict[str, float]],
    *,
    n: int = N_RESAMPLES,
    seed: int = SEED,
    alpha: float = ALPHA,
) -> dict[str, tuple[float, float]]:
    """A bootstrap interval for every aggregate key, in aggregate's order (the metrics.json "ci")."""
    _check_pairs(predictions, references)
    corpus = corpus_statistics(predictions, references)
    intervals = {}
    for name in (*ORIGINAL_METRICS, *OUR_METRICS):
        metric = corpus[name] if name in corpus else [sample[name] for sample in per_sample]
        intervals[name] = bootstrap_ci(metric, n=n, seed=seed, alpha=alpha)
    return intervals
