"""Text utilities for building records: words, sentences, stand-alone starts, chunking."""

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


# ------------------------------------------------------------------------------------ stand-alone starts
# A passage given to a new question must not open with words that only make sense after something before
# it: a connective ("Then", "And so", "That's why"), an answer particle ("Yes.", "Exactly."), a pronoun
# with nothing to refer to ("She finished her dinner"), or a fragment that only an earlier question
# completes ("Upper apiary.").
CONNECTIVES = frozenset("""and but so or nor then because which also too anyway still yet however besides otherwise
    instead plus meanwhile therefore thus hence afterwards afterward later whereas except second secondly third
    thirdly fourth lastly finally""".split())
CONNECTIVE_PHRASES = ("after that", "that's why", "that is why", "this is why", "which is why", "even so", "by then",
                      "since then", "in that case", "on top of that", "apart from that", "other than that",
                      "as i said", "like i said", "the same", "the rest", "the other", "not that", "in the end",
                      "at that", "at the time", "before that", "until then", "from then", "for that")
ANSWER_PARTICLES = frozenset("""yes yeah yep no nope exactly right true sure absolutely correct indeed maybe perhaps
    definitely certainly probably mm mhm hmm uh um ah oh okay ok""".split())
BACK_REFERENCES = frozenset("""it it's its this that that's these those he he's she she's they they're them him her his
    hers their theirs such both neither another same again""".split())
# Pronouns that need a person or thing named earlier, wherever they sit in a passage's opening.
GENDERED = frozenset("he him his she her hers he's she's he'd she'd he'll she'll".split())
OTHER_PRONOUNS = frozenset("they them their theirs it it's they're they've they'd they'll".split())
PERSON_NOUNS = frozenset("""father mother dad mum mom papa mama grandfather grandmother grandma grandpa granny uncle aunt
    brother sister son daughter wife husband partner friend man men woman women boy girl child children kid kids
    teacher doctor farmer neighbour neighbor customer guy lady person fisherman fishermen pupil student colleague boss
    mayor priest inspector engineer pianist drummer singer player queen bee bees bear dog cat cow horse otter animal
    everyone everybody someone somebody nobody anyone anybody""".split())
OPENERS = frozenset("""well now so okay look listen honestly frankly first second third finally actually sometimes
    today yesterday basically seriously anyway still luckily sadly unfortunately fortunately again bon voilà allora
    oh ah""".split())
# Words after which such a pronoun has something in the passage to refer to.
ANTECEDENT_MARKERS = frozenset("""the a an my our your every each some many most all people everyone everybody someone
    somebody nobody anyone anybody one""".split())
ADVERBS = frozenset("""sometimes often usually now today yesterday tomorrow here once later soon finally suddenly
    when if while after before since until whenever whatever whoever wherever however""".split())
FINITE = frozenset("""is are was were am be been has have had do does did can could will would shall should may
    might must isn't aren't wasn't weren't hasn't haven't hadn't don't doesn't didn't can't couldn't won't wouldn't
    shouldn't i we you he she they it there said says came comes went goes took takes made makes got gets gave gives
    knew knows thought thinks told tells felt feels left leaves saw sees found finds kept keeps began begins brought
    brings stood stands fell falls wrote writes ran runs sat sits lives means meant wants needs looks seems becomes
    became grew grows works starts stays turns stops hold holds held let lets put puts sent sends bought buys""".split())
# Verbs that open a reply without their subject ("Depends on the day.", "Sounds simple.").
SUBJECTLESS = frozenset("depends means sounds looks seems happens comes goes works".split())
# Where a sentence's head ends: a relative clause or a subordinate clause has its own verb.
RELATIVE = frozenset("that which who whom whose where if when because unless although while since until".split())
CONTRACTED_FINITE = frozenset("it's that's he's she's there's what's who's here's where's let's".split())
NOT_PAST_TENSE = frozenset("hundred red bed shed seed speed need feed breed indeed sacred naked wicked".split())
TIME_WORDS = frozenset("""year morning week month summer winter spring autumn evening afternoon night time day
    season century decade""".split())
# Situational speech: the person is showing or telling someone in the room what to do.
SITUATIONAL = frozenset("""walk come sit look listen wait hold careful see watch bring excuse hang mind quick""".split())
# Advice opens with an order to whoever asked for it ("Plant for somebody you won't meet.").
IMPERATIVES = frozenset("""plant learn take make put go try keep let imagine remember give find choose start stop eat
    leave ask tell use read write play be don't never always do""".split())
OBJECT_BACK = re.compile(r"\b(?:for|about|of|with|on|at|from|into|like|without|after|before) (?:it|them)\b", re.I)
QUANTIFIED_BACK = re.compile(r"\b(?:some|all|most|half|none|one|many|each|both|any|much|part|rest) of "
                             r"(?:it|them|those|these|this|that)\b", re.I)
ASKED = frozenset("answer answers answered question questions asked".split())
DEMONSTRATIVE_BACK = frozenset("""one up kind part story thing things hour way man woman boy girl place night moment
    point idea sort lot""".split())
REFERS_BACK_AT_END = ("though", "too", "either", "as well", "instead", "anyway", "again")
THANKS = re.compile(r"\b(?:thank you|thanks)\b", re.I)
ONE_BACK = re.compile(r"\b(?:the|that|this|which) (?:\w+ )?one\b|\bmy dear [A-ZÀ-Þ]|^\w+(?: \w+)?:", re.I)
VOCATIVE = re.compile(r"^([A-ZÀ-Þ][\w'’-]+),|,\s+([A-ZÀ-Þ][\w'’-]+)\s*[,.!?]")


def _fragment(sentence: str) -> bool:
    """An opening with no verb of its own, which only an earlier question completes ("Every day.", "The mite.",
    "A line on the seabed that we can find again.")."""
    tokens = norm_words(sentence)
    if not tokens:
        return True
    if tokens[0] in SUBJECTLESS:
        return True
    if len(tokens) > 20:
        return False
    head = tokens
    for index, token in enumerate(tokens):
        if index and token in RELATIVE:
            head = tokens[:index]  # "A line ... that we can find": the verb belongs to the relative clause
            break
    for index, token in enumerate(head):
        if token == "may" and index + 1 < len(head) and head[index + 1][:1].isdigit():
            continue  # "May 2014." is a date
        if token in FINITE or token in CONTRACTED_FINITE or (
                "'" in token and token.split("'")[-1] in ("re", "m", "ve", "ll", "d", "t")):
            return False
        if index and token.endswith("ed") and len(token) > 4 and token not in NOT_PAST_TENSE:
            return False
    return True


def _unresolved_pronoun(opening: list[str]) -> str | None:
    """A pronoun in the first sentences with nothing named before it: he/she need a person (a name or a word
    like "my father"), they/it need some noun phrase ("the bees", "a hedge")."""
    seen: list[str] = []  # lower-cased words before the current one
    names = False  # a capitalised word that is not just the start of a sentence
    for sentence in opening:
        tokens = norm_words(sentence)
        surface = words(sentence)
        for index, token in enumerate(tokens):
            if seen or index:
                if token in GENDERED and not (names or any(w in PERSON_NOUNS for w in seen)):
                    return f"'{token}' has nobody to refer to"
                if token in OTHER_PRONOUNS and not (names or any(w in ANTECEDENT_MARKERS for w in seen)):
                    return f"'{token}' has nothing to refer to"
            if index == 0 and token not in STOPWORDS and token not in ADVERBS and token not in OPENERS \
                    and not token.endswith("ly") and surface and surface[0][:1].isupper():
                names = True  # "Tomas told me he was late." (or a noun subject: "Swarming is ...")
            elif index and index < len(surface) and surface[index][:1].isupper() and token != "i":
                names = True
            seen.append(token)
    return None


def _vocative(sentence: str) -> bool:
    """Speaks to someone in the room: "Inge, I am ...", "Never completely, Jakob, and ..."."""
    for match in VOCATIVE.finditer(sentence.strip()):
        name = match.group(1) or match.group(2)
        folded = name.casefold()
        if folded not in STOPWORDS and folded not in ADVERBS and folded not in OPENERS and not folded.endswith("ly"):
            return True
    return False


def dangling_start(sentence: str, following: str = "") -> str | None:
    """Why ``sentence`` cannot open a passage without what came before it, or None when it can.

    ``following`` (the next sentence) is checked for a pronoun that nothing before it names.
    """
    tokens = norm_words(sentence)
    if not tokens:
        return "empty"
    first = tokens[0]
    opening = " ".join(tokens[:4])
    if first in CONNECTIVES or any(opening == p or opening.startswith(p + " ") for p in CONNECTIVE_PHRASES):
        return f"opens with a connective ('{first}')"
    if first in ANSWER_PARTICLES:
        return f"opens by answering something earlier ('{first}')"
    if first == "there" and (len(tokens) < 2 or tokens[1] not in ("is", "are", "was", "were", "will", "would", "has",
                                                                  "have", "had", "must", "might", "may", "can")):
        return "opens by pointing at something ('there')"
    if first in ("this", "that") and len(tokens) > 1 and tokens[1] in TIME_WORDS:
        pass  # "This year we had rain."
    elif first in BACK_REFERENCES and first != "there":
        return f"opens with a word that refers back ('{first}')"
    if sentence.rstrip().endswith("?"):
        return "opens with a question of its own"
    if THANKS.search(sentence) or _vocative(sentence):
        return "opens by speaking to someone in the room"
    if " ".join(tokens[-2:]) in REFERS_BACK_AT_END or tokens[-1] in REFERS_BACK_AT_END:
        return f"refers back ('{tokens[-1]}')"
    if any(t == "same" for t in tokens):
        return "refers back ('same')"
    if ONE_BACK.search(sentence):
        return "refers back ('one', or speaks to someone)"
    if any(t in ASKED for t in tokens):
        return "answers something asked earlier"
    if QUANTIFIED_BACK.search(sentence) or any(t in ("those", "these") for t in tokens):
        return "refers back (a quantity of something named earlier)"
    for index, token in enumerate(tokens[1:], start=1):
        following_token = tokens[index + 1] if index + 1 < len(tokens) else ""
        if token in ("this", "that") and (not following_token or following_token in DEMONSTRATIVE_BACK):
            return f"refers back ('{token}')"
        if token == "there" and following_token not in ("is", "are", "was", "were", "will", "would", "has", "have",
                                                        "had", "must", "might", "may", "can", "'s"):
            return "refers back ('there')"
    if first in SITUATIONAL or (following and norm_words(following)[:1] and norm_words(following)[0] in SITUATIONAL):
        return "speaks to someone in the room"
    if first in IMPERATIVES:
        return "gives advice to whoever asked"
    if OBJECT_BACK.search(sentence):
        return "refers back ('it' or 'them')"
    if len(tokens) <= 2:
        return "too short to stand alone"
    pronoun = _unresolved_pronoun([sentence, following] if following else [sentence])
    if pronoun:
        return pronoun
    if _fragment(sentence):
        return "opens with a fragment that answers an earlier question"
    return None


def chunk_text(text: str, min_words: int, max_words: int) -> list[str]:
    """Split at sentence boundaries into chunks of about min..max words (target in between).

    A chunk boundary goes where the next chunk can stand alone: at a paragraph break once a chunk has
    ``min_words``, else before the first sentence past the target length that does not refer back. Only
    when none comes before ``max_words`` is a chunk cut before a sentence that does (then the previous
    chunk is given as the conversation's earlier turn).
    """
    units: list[tuple[str, bool]] = []  # (sentence, starts a paragraph)
    for paragraph in text.split("\n"):
        for index, sentence in enumerate(s for part in sentences(paragraph) for s in split_long_sentence(part, max_words)):
            units.append((sentence, index == 0))
    standalone = [dangling_start(sentence, units[i + 1][0] if i + 1 < len(units) else "") is None
                  for i, (sentence, _) in enumerate(units)]
    target = (min_words + max_words) // 2
    counts = [word_count(sentence) for sentence, _ in units]
    chunks: list[list[str]] = []
    start = 0
    while start < len(units):
        total, end, fallback, cut = 0, start, None, None
        while end < len(units) and (end == start or total + counts[end] <= max_words):
            total += counts[end]
            end += 1
            if end < len(units) and total >= min_words and standalone[end]:
                if units[end][1] or total >= target:
                    cut = end  # a paragraph break, or past the target length, where the next sentence stands alone
                    break
                fallback = end  # the latest stand-alone boundary so far
        if cut is None:
            # out of room: the latest stand-alone boundary, else the size limit itself
            cut = len(units) if end >= len(units) else (fallback if fallback is not None else end)
        chunks.append([sentence for sentence, _ in units[start:cut]])
        start = cut
    if len(chunks) > 1:
        tail = sum(map(word_count, chunks[-1]))
        if tail < min_words and sum(map(word_count, chunks[-2])) + tail <= max_words + min_words // 2:
            chunks[-2].extend(chunks.pop())  # a short tail joins the previous chunk
    return [" ".join(chunk) for chunk in chunks]


ASKING_VERBS = frozenset("tell talk describe explain show walk give say take let look come go help remind imagine".split())


def question_needs_context(question: str) -> str | None:
    """Why a question only makes sense after an earlier exchange ("Did you tell the family that?", "And Teddy?",
    "What did he teach you?"), or None. Only the question itself counts, not a lead-in before it ("Leila, the
    same question. What does patience look like underwater?" asks something complete)."""
    parts = sentences(question)
    asked = [part for part in parts if "?" in part]
    last = asked[-1] if asked else (parts[-1] if parts else question)
    tokens = norm_words(last)
    if not tokens:
        return "empty"
    first = tokens[0]
    lead = norm_words(question[:question.rfind(last)]) if last in question else []
    if first in CONNECTIVES and len(lead) < 10:
        return f"opens with '{first}'"  # "And your advice?" (after a lead-in of its own, "And ..." is fine)
    if first in ("it", "that", "this", "these", "those", "he", "she", "they", "there"):
        return f"opens with '{first}'"
    if len(tokens) <= 6 and tokens[0] not in ASKING_VERBS and _fragment(last):
        return "a fragment"  # "A bear?", "Why two and not three?": it finishes a sentence said before
    if "same" in tokens or tokens[-1] in ("too", "either", "again", "that", "this", "then"):
        return "refers back"
    before = question[:question.rfind(last)] if last in question else ""
    surface = words(before + last)
    all_tokens = norm_words(before + last)
    offset = len(all_tokens) - len(tokens)
    for index, token in enumerate(tokens):
        at = offset + index
        if token in GENDERED and not any(w[:1].isupper() for w in surface[1:at]) \
                and not any(w in PERSON_NOUNS for w in all_tokens[:at]):
            return f"'{token}' has nobody to refer to"
        if token in ("that", "this", "those", "these") and index + 1 < len(tokens) \
                and tokens[index + 1] in DEMONSTRATIVE_BACK | {"stuff", "work", "day", "year"}:
            return f"'{token} {tokens[index + 1]}' refers back"
    return None


SIMPLE_PAST = frozenset("""was were did had went came said told took got made saw found gave knew thought felt left kept
    began brought stood fell wrote ran sat met bought sent lost won heard became grew""".split())
PERFECT = frozenset("have has had 've 's been be is are was were get got".split())


def tells_a_story(sentence: str) -> bool:
    """An opening in the simple past: in the middle of a turn, usually the middle of a story."""
    tokens = norm_words(sentence)
    for index, token in enumerate(tokens):
        if token in SIMPLE_PAST:
            return True
        if index and token.endswith("ed") and len(token) > 4 and token not in NOT_PAST_TENSE and token != "used" \
                and tokens[index - 1] not in PERFECT and not tokens[index - 1].endswith(("'ve", "'s", "'d")):
            return True
    return False


def unresolved_person(parts: list[str]) -> int | None:
    """The index of the first sentence with he/she/him/her that no name or person word before it explains."""
    named = False
    for index, sentence in enumerate(parts):
        tokens = norm_words(sentence)
        surface = words(sentence)
        for position, token in enumerate(tokens):
            if token in GENDERED and not named:
                return index
            if token in PERSON_NOUNS or (position and position < len(surface) and surface[position][:1].isupper()
                                          and token != "i"):
                named = True
    return None


POINTERS = frozenset("it it's its they they're them their he he's him his she she's her that this these those".split())


def refers_elsewhere(question: str) -> bool:
    """A question that leans on something said before it: it needs its context, or it points with a pronoun."""
    if question_needs_context(question):
        return True
    parts = [part for part in sentences(question) if "?" in part] or sentences(question)
    return bool(parts) and any(token in POINTERS for token in norm_words(parts[-1]))


ENUMERATION = re.compile(r"^(?:and\s+|but\s+)?(?:second|secondly|third|thirdly|fourth|finally|lastly)\b", re.I)


def enumeration_at(parts: list[str]) -> int | None:
    """The index of the first sentence after the opening that goes on with a list begun elsewhere ("And third, ...")."""
    for index, sentence in enumerate(parts[1:], start=1):
        if ENUMERATION.match(sentence.strip()):
            return index
    return None


def without_handover(text: str, min_words: int) -> str | None:
    """``text`` without the questions it ends on ("... Can I ask Leila something? Are they greedy?"): a speaker
    who ends by asking someone else has handed the turn over, and what they asked is not part of an answer.
    None when too little is left."""
    parts = sentences(text)
    while parts and parts[-1].rstrip().endswith("?"):
        parts.pop()
    kept = " ".join(parts)
    return kept if word_count(kept) >= min_words else None


GREETINGS = frozenset("hello hi bonsoir bonjour goodnight goodbye welcome".split())
ADDRESSEES = frozenset("everybody everyone guys folks".split())


def speaks_to_the_room(sentence: str) -> bool:
    """Words addressed to someone present rather than said in answer ("Jonas, can you take us wider?", "Bonsoir,
    everybody", "Hold on a second.", "Now help me with the chairs.")."""
    tokens = norm_words(sentence)
    if not tokens:
        return False
    first = tokens[0]
    if first in SITUATIONAL or first in GREETINGS or _vocative(sentence) or THANKS.search(sentence):
        return True
    if any(t in ADDRESSEES for t in tokens[:3]):
        return True
    return first in OPENERS and len(tokens) > 1 and tokens[1] in SITUATIONAL | IMPERATIVES | {"help"}
