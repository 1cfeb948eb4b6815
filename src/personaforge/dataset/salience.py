"""How distinctive a word is in one build's persona speech (idf), for the lexical shortlist before retrieval."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from personaforge.dataset.text import content_stems, norm_words, stem


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
        self._terms: dict[str, frozenset[str]] = {}  # passages are scored against many queries

    def terms(self, text: str) -> frozenset[str]:
        found = self._terms.get(text)
        if found is None:
            found = self._terms[text] = frozenset(content_stems(text)) - self._ignore
        return found

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._default_idf)

    def relevance(self, query_terms: set[str], text: str) -> float:
        """idf-weighted overlap between a query's stems and a text's stems."""
        return sum(self.idf(t) for t in query_terms & self.terms(text))
