"""Which words and sentences of a segment matter: tf-idf over the persona speech of one build."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from personaforge.dataset.text import STOPWORDS, content_stems, norm_words, sentences, stem


class Salience:
    def __init__(self, documents: Iterable[str], ignore: Iterable[str] = ()) -> None:
        df: Counter[str] = Counter()
        total = 0
        for document in documents:
            df.update(set(content_stems(document)))
            total += 1
        self._idf = {term: math.log((1 + total) / (1 + count)) + 1.0 for term, count in df.items()}
        self._default_idf = math.log(1 + total) + 1.0
        self._ignore = {stem(w) for phrase in ignore for w in norm_words(phrase)}
        self._terms: dict[str, frozenset[str]] = {}  # segments are scored against many queries

    def terms(self, text: str) -> frozenset[str]:
        found = self._terms.get(text)
        if found is None:
            found = self._terms[text] = frozenset(content_stems(text))
        return found

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._default_idf)

    def keywords(self, text: str, n: int = 2) -> list[str]:
        """The n most distinctive words of ``text`` (surface form, lower-case), ties broken by first use."""
        counts: Counter[str] = Counter()
        surface: dict[str, str] = {}
        order: dict[str, int] = {}
        for position, word in enumerate(norm_words(text)):
            if word in STOPWORDS or len(word) < 4 or word.isdigit() or "'" in word:
                continue
            term = stem(word)
            if term in self._ignore:
                continue
            counts[term] += 1
            surface.setdefault(term, word)
            order.setdefault(term, position)
        ranked = sorted(counts, key=lambda t: (-counts[t] * self.idf(t), order[t]))
        return [surface[t] for t in ranked[:n]]

    def relevance(self, query_terms: set[str], text: str) -> float:
        """idf-weighted overlap between a query's stems and a text's stems."""
        return sum(self.idf(t) for t in query_terms & self.terms(text))

    def top_sentences(self, text: str, query_terms: set[str], keep: int) -> str:
        """The ``keep`` sentences most about the query (plus salience), in their original order."""
        parts = sentences(text)
        if len(parts) <= keep:
            return " ".join(parts)

        def score(index: int) -> tuple[float, int]:
            terms = content_stems(parts[index])
            if not terms:
                return (0.0, -index)
            weight = sum(self.idf(t) * (3.0 if t in query_terms else 1.0) for t in terms) / math.sqrt(len(terms))
            return (weight, -index)

        chosen = sorted(sorted(range(len(parts)), key=score, reverse=True)[:keep])
        return " ".join(parts[i] for i in chosen)


def query_terms(text: str) -> set[str]:
    return set(content_stems(text))
