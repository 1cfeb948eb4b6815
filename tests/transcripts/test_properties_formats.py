"""Property tests for the newer layouts: well-formed `Name: text`, Rev, Descript, Otter-with-parenthetical and
WhisperX transcripts round-trip exactly, whatever colons their speech holds."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from personaforge.transcripts import detect_format, parse_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["Anna", "Bo Lind", "Dr. Haddad", "MS. CHEN", "INTERVIEWER", "Q", "A", "Ross-Nazzal", "Ana de la Cruz",
         "SPEAKER_00", "Søren Ægidius"]
word = st.text(alphabet="abcdefghijklmnopqrstuvwxyzæøå", min_size=1, max_size=8)
words = st.lists(word, min_size=1, max_size=6).map(" ".join)


@st.composite
def sentence(draw) -> str:
    """A sentence that may hold a colon mid-text: "Xyz abc: def ghi." — never a label."""
    first = draw(word).capitalize()
    rest = draw(st.one_of(words, st.sampled_from(["de", "la de", "van", "e"])))  # "Xyz de:" looks like a name
    if draw(st.booleans()):
        rest = f"{rest}: {draw(words)}"
    return f"{first} {rest}{draw(st.sampled_from(['.', '?', '!']))}"


paragraph = st.lists(sentence(), min_size=1, max_size=3).map(" ".join)
turn_text = st.lists(paragraph, min_size=1, max_size=3)  # paragraphs of one turn


@st.composite
def conversation(draw, names=NAMES) -> list[tuple[str, list[str]]]:
    """Alternating speakers, each speaking at least twice (labels the file repeats)."""
    cast = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
    order = draw(st.lists(st.sampled_from(cast), min_size=2 * len(cast), max_size=10))
    order = [name for i, name in enumerate(order) if i == 0 or name != order[i - 1]]  # one turn per speaker change
    assume(all(order.count(name) >= 2 for name in cast))
    return [(name, draw(turn_text)) for name in order]


def expected(turns: list[tuple[str, list[str]]]) -> list[tuple[str, str]]:
    return [(name, "\n".join(paragraphs)) for name, paragraphs in turns]


@SETTINGS
@given(turns=conversation(), blank_between=st.booleans(), label_alone=st.booleans())
def test_colon_round_trip(turns, blank_between, label_alone):
    blocks = []
    for name, paragraphs in turns:
        head = f"{name}:\n{paragraphs[0]}" if label_alone else f"{name}: {paragraphs[0]}"
        blocks.append("\n\n".join([head, *paragraphs[1:]]))
    text = ("\n\n" if blank_between else "\n").join(blocks) + "\n"
    if not blank_between and any(len(p) > 1 for _, p in turns):
        text = "\n\n".join(blocks) + "\n"  # paragraphs of a turn need blank lines to stay paragraphs
    t = parse_text(text, "x.txt")
    assert t.format == "colon"
    assert [(turn.speaker, turn.text) for turn in t.turns] == expected(turns)


def stamp(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@SETTINGS
@given(turns=conversation(), gap=st.integers(min_value=0, max_value=4000))
def test_rev_round_trip(turns, gap):
    text = "\n\n".join(f"{name} ({stamp(i * gap)}):\n" + "\n\n".join(paragraphs)
                       for i, (name, paragraphs) in enumerate(turns)) + "\n"
    t = parse_text(text, "x.txt")
    assert t.format == "rev"
    assert [(turn.speaker, turn.text) for turn in t.turns] == expected(turns)
    assert [turn.start for turn in t.turns] == [float(i * gap) for i in range(len(turns))]


@SETTINGS
@given(turns=conversation(), trint=st.booleans())
def test_descript_round_trip(turns, trint):
    def block(i: int, name: str, paragraphs: list[str]) -> str:
        head = f"{name} [{stamp(i)}]\n{paragraphs[0]}" if trint else f"[{stamp(i)}] {name}: {paragraphs[0]}"
        return "\n\n".join([head, *paragraphs[1:]])

    text = "\n\n".join(block(i, name, p) for i, (name, p) in enumerate(turns)) + "\n"
    t = parse_text(text, "x.md", suffix=".md")
    assert t.format == "descript"
    assert [(turn.speaker, turn.text) for turn in t.turns] == expected(turns)


note = st.lists(st.one_of(word, st.integers(0, 99).map(str), st.sampled_from(["vorne", "зал", "前列", "2."])),
                min_size=1, max_size=4).map(lambda ws: ", ".join(ws))


@SETTINGS
@given(turns=conversation(["Leila Haddad", "ruth", "Speaker 2"]), notes=st.lists(note, min_size=1, max_size=3))
def test_otter_labels_with_any_parenthetical_start_their_own_turn(turns, notes):
    # a one-off audience label with a qualifier is inserted after the first turn
    guest = f"audience member ({notes[0]})"
    turns = [turns[0], (guest, ["Is it too late for us?"]), *turns[1:]]
    text = "\n\n".join(f"{name}  {stamp(i * 7)}\n" + "\n\n".join(paragraphs)
                       for i, (name, paragraphs) in enumerate(turns)) + "\n"
    t = parse_text(text, "x.txt")
    assert t.format == "otter"
    assert [(turn.speaker, turn.text) for turn in t.turns] == expected(turns)


@SETTINGS
@given(segments=st.lists(st.tuples(st.sampled_from(["SPEAKER_00", "SPEAKER_01", None]), sentence()), min_size=1,
                         max_size=12))
def test_whisper_merges_and_resolves_unlabelled_segments(segments):
    assume(any(speaker for speaker, _ in segments))
    document = {"segments": [{"start": float(i), "end": i + 0.5, "text": f" {text}",
                              **({"speaker": speaker} if speaker else {})} for i, (speaker, text) in enumerate(segments)]}
    text = json.dumps(document, indent=1)
    assert detect_format(text, ".json") == "whisper"
    t = parse_text(text, "x.json", suffix=".json")
    # the reference: an unlabelled segment takes the speaker on both sides when they agree, else is left out
    labelled = [s for s, _ in segments]
    resolved = []
    for i, (speaker, sentence_text) in enumerate(segments):
        if speaker is None:
            before = next((s for s in reversed(labelled[:i]) if s), None)
            after = next((s for s in labelled[i + 1:] if s), None)
            speaker = before if before is not None and before == after else None
        if speaker is None:
            continue
        if resolved and resolved[-1][0] == speaker:
            resolved[-1] = (speaker, f"{resolved[-1][1]} {sentence_text}")
        else:
            resolved.append((speaker, sentence_text))
    assert [(turn.speaker, turn.text) for turn in t.turns] == resolved
    left_out = len(segments) - sum(1 for s, _ in segments if s) - sum(
        1 for i, (s, _) in enumerate(segments) if s is None and (b := next((x for x in reversed(labelled[:i]) if x), None))
        is not None and b == next((x for x in labelled[i + 1:] if x), None))
    assert (f"left out {left_out} segment(s)" in " ".join(t.warnings)) == (left_out > 0)
