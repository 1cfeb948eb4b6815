"""Questions that are well-formed by construction: no slot is ever filled with a word picked from an answer.

Sources: the card's topics and markers (phrases a person wrote), continuation turns for monologue
("Go on."), and rephrasings of real interviewer questions by rules that only move whole phrases.
"""

from __future__ import annotations

import re

from personaforge.dataset.text import norm_words, sentences

TOPIC_QUESTIONS = ["Tell me about {topic}.", "What can you tell me about {topic}?", "Talk to me about {topic}."]
CONTINUATIONS = ["Go on.", "Please, go on.", "Tell me more.", "Go on, please."]
# After a turn that tells a story, the next chunk opens with what happened next.
NARRATIVE_CONTINUATIONS = ["What happened then?", "And then?"]
NARRATIVE_OPENERS = ("then", "after that", "afterwards", "later", "next", "the next", "the following", "by the time",
                     "and then", "so then", "that night", "that morning", "the day after", "a week later",
                     "a year later", "years later")
MARKER_QUESTION = "You often say “{marker}”. What do you mean by that?"
NEGATIVE_QUESTIONS = ["What do you think about {topic}?", "What can you tell me about {topic}?"]
DEFAULT_DEFLECTION = (
    "I'm not the right person to ask about {topic}; {other} knows far more about that than I do."
    " What I can talk about is {own_topic}."
)

# A marker is a saying worth asking about ("the bees decide") when it is a clause of three words or more,
# not a filler ("you see"), a lead-in ("my grandfather used to say"), a simile ("like a good chord") or a
# hedge ("to be precise", "in ecological terms", "the data suggests").
_NOT_A_SAYING_START = frozenset("my to in like you i as of for at on by with so and but well".split())
_LEAD_IN_END = frozenset("say says said suggests suggest tell tells think thinks mean means know".split())


_POSSESSIVE = re.compile(r"^(?:his|her|their|my|one's)\s+", re.I)


def as_asked(topic: str) -> str:
    """A card topic as the interviewer says it to the person: "his grandfather" → "your grandfather"."""
    return _POSSESSIVE.sub("your ", topic.strip())


def as_said(topic: str) -> str:
    """A card topic as the person says it: "his grandfather" → "my grandfather"."""
    return _POSSESSIVE.sub("my ", topic.strip())


def is_personal(topic: str) -> bool:
    """A topic that belongs to its person ("his grandfather"): nobody else can be asked about it as it stands."""
    return _POSSESSIVE.match(topic.strip()) is not None


def marker_is_saying(marker: str) -> bool:
    tokens = norm_words(marker)
    return len(tokens) >= 3 and tokens[0] not in _NOT_A_SAYING_START and tokens[-1] not in _LEAD_IN_END


def is_narrative_opening(answer: str) -> bool:
    opening = " ".join(norm_words(answer)[:3])
    return any(opening == p or opening.startswith(p + " ") for p in NARRATIVE_OPENERS)


def capitalize_sentences(text: str) -> str:
    """Capital letters where sentences start ("ocean warming? No." → "Ocean warming? No.")."""
    text = " ".join(text.split())
    return re.sub(r"(^|[.!?]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)


# ------------------------------------------------------------------------------------------- rephrasing
_FILLER = re.compile(r"^(?:so|and|okay|ok|well|now|right|alright|but)\b[,\s]+", re.I)
_VOCATIVE = re.compile(r"^((?:[A-ZÀ-Þ][\w'’-]+)(?:\s[A-ZÀ-Þ][\w'’-]+)?),\s+(?=[a-z])")
_WH = r"what|how|why|where|when|who|which"
_AUX = r"is|are|was|were|do|does|did|can|could|would|will|have|has|had|should"
_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:tell|talk to) (me|us) (a bit |a little )?more about (.+?)[.!]$", re.I),
     "Can you tell {0} more about {2}?"),
    (re.compile(r"^tell (me|us) (?:a bit |a little )?about (.+?)[.!]$", re.I), "What can you tell {0} about {1}?"),
    (re.compile(r"^talk to (me|us) about (.+?)[.!]$", re.I), "What can you tell {0} about {1}?"),
    (re.compile(r"^what can you tell (me|us) about (.+?)\?$", re.I), "Tell {0} about {1}."),
    (re.compile(r"^(walk|take|tell|show|describe|explain|give) (.+?)[.!]$", re.I), "Can you {0} {1}?"),
    (re.compile(r"^why do you (.+?)\?$", re.I), "What makes you {0}?"),
    (re.compile(r"^why did you (.+?)\?$", re.I), "What made you {0}?"),
    (re.compile(r"^what do you think (?:about|of) (.+?)\?$", re.I), "How do you see {0}?"),
    (re.compile(r"^how do you feel about (.+?)\?$", re.I), "What do you think about {0}?"),
    (re.compile(r"^can you (.+?)\?$", re.I), "Could you {0}?"),
    (re.compile(r"^could you (.+?)\?$", re.I), "Can you {0}?"),
    (re.compile(r"^how many (.+?)\?$", re.I), "Roughly how many {0}?"),
    (re.compile(r"^how much (.+?)\?$", re.I), "Roughly how much {0}?"),
]
_EXACTLY = re.compile(rf"^({_WH})\s+((?:{_AUX})\b.+\?)$", re.I)
_TELL_ME = re.compile(rf"^(?:{_WH}|{_AUX})\b.+\?$", re.I)
_OWN_REQUEST = re.compile(r"^(?:can|may|could|shall|should|do|am|must)\s+(?:i|we)\b", re.I)
_HEDGES = re.compile(r"\b(?:exactly|actually|really|precisely)\b", re.I)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:1].isupper() and not text.startswith(("I ", "I'")) else text


def rephrase(question: str, variant: int = 0) -> str | None:
    """The same question said another way, or None when no rule applies (a statement, an exclamation).

    Only the last sentence is rephrased; a lead-in before it and a name it is addressed to stay.
    """
    parts = sentences(question)
    if not parts:
        return None
    asked = [i for i, part in enumerate(parts) if "?" in part]
    at = asked[-1] if asked else len(parts) - 1
    last = parts[at]
    lead = " ".join(parts[:at])
    tail = " ".join(parts[at + 1:])
    core = _FILLER.sub("", last).strip()
    vocative = ""
    match = _VOCATIVE.match(core)
    if match and match.group(1).casefold() not in ("what", "how", "why", "where", "when", "who", "which", "tell"):
        vocative, core = match.group(1), core[match.end():]
    if not core or _OWN_REQUEST.match(core):
        return None  # "Can I go first?" asks for something; it is not a question to the person
    core = core[:1].upper() + core[1:]
    options: list[str] = []
    for pattern, template in _RULES:
        found = pattern.match(core)
        if found:
            groups = [g or "" for g in found.groups()]
            groups[0] = groups[0].lower() if groups[0].casefold() in ("me", "us", "walk", "take", "tell", "show",
                                                                       "describe", "explain", "give") else groups[0]
            options.append(" ".join(template.format(*(g.strip() for g in groups)).split()))
            break
    found = _EXACTLY.match(core)
    if found and not _HEDGES.search(core):
        options.append(f"{found.group(1)} exactly {found.group(2)}")
    if _TELL_ME.match(core) and len(core.split()) >= 4:  # not "Tell me, is it?"
        options.append("Tell me, " + _lower_first(core))
    options = [o for o in options if o.casefold() != core.casefold()]
    if not options:
        return None
    chosen = options[variant % len(options)]
    if vocative:
        chosen = f"{vocative}, {_lower_first(chosen)}"
    chosen = chosen[:1].upper() + chosen[1:]
    return " ".join(part for part in (lead, chosen, tail) if part)
