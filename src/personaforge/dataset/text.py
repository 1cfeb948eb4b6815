"""Text utilities for building records: words, sentences, salient keywords, chunking."""

from __future__ import annotations

import functools
import hashlib
import re

_WORD = re.compile(r"[\w’']+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][\"”’)\]]))\s+(?=[\"“‘(\[]?[A-Z0-9À-ÖØ-Þ])")

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
    each even ever every few for from further get gets got had hadn't has hasn't have haven't having he he'd
    he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it
    it's its itself just know let's like little lot make many me more most much must mustn't my myself no nor
    not now of off oh ok okay on once one only or other ought our ours ourselves out over own really right said
    same say says see shan't she she'd she'll she's should shouldn't so some something still such take tell than
    that that's the their theirs them themselves then there there's these they they'd they'll they're they've
    thing things think this those though through thought time to too two under until up upon us very was wasn't
    way we we'd we'll we're we've well were weren't what what's when when's where where's which while who who's
    whom why why's will with won't would wouldn't yeah yes yet you you'd you'll you're you've your yours yourself
    yourselves go going goes went come came back first years year day days people maybe kind sort mean always
    never because around again want wanted look put went made""".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def norm_words(text: str) -> list[str]:
    """Lower-cased words with one apostrophe form: the unit for n-gram overlap."""
    return [w.replace("’", "'").casefold() for w in _WORD.findall(text)]


def word_count(text: str) -> int:
    return len(text.split())


def sentences(text: str) -> list[str]:
    parts: list[str] = []
    for paragraph in text.split("\n"):
        parts.extend(s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip())
    return parts


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A crude stem, enough to match 'bees' with 'bee' and 'seasons' with 'season'."""
    word = word.casefold().replace("’", "'")
    for suffix in ("'s", "ing", "ies", "es", "s", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def content_stems(text: str) -> list[str]:
    return [stem(w) for w in norm_words(text) if w not in STOPWORDS and len(w) > 2 and not w.isdigit()]


def stable_index(key: str, n: int) -> int:
    """A deterministic choice in range(n) from a string (no dependence on PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % n if n else 0


def split_long_sentence(sentence: str, max_words: int) -> list[str]:
    tokens = sentence.split()
    if len(tokens) <= max_words:
        return [sentence]
    pieces, current = [], []
    for token in tokens:
        current.append(token)
        if len(current) >= max_words // 2 and token.endswith((",", ";", ":", "—", "–")):
            pieces.append(" ".join(current))
            current = []
        elif len(current) >= max_words:
            pieces.append(" ".join(current))
            current = []
    if current:
        pieces.append(" ".join(current))
    return pieces


def chunk_text(text: str, min_words: int, max_words: int) -> list[str]:
    """Split at sentence boundaries into chunks of about min..max words (target in between)."""
    units: list[str] = []
    for sentence in sentences(text):
        units.extend(split_long_sentence(sentence, max_words))
    target = (min_words + max_words) // 2
    chunks: list[list[str]] = []
    current: list[str] = []
    count = 0
    for unit in units:
        n = word_count(unit)
        if current and (count + n > max_words or count >= target):
            chunks.append(current)
            current, count = [], 0
        current.append(unit)
        count += n
    if current:
        if chunks and count < min_words and sum(map(word_count, chunks[-1])) + count <= max_words + min_words // 2:
            chunks[-1].extend(current)  # a short tail joins the previous chunk
        else:
            chunks.append(current)
    return [" ".join(chunk) for chunk in chunks]
