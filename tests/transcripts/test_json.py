"""JSON (a list, or an object with a "turns" list) and JSONL transcripts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import SPEECH, parse_file, parse_text

FIXTURES = Path(__file__).parent / "fixtures"


def rows(transcript):
    return [(t.speaker, t.text, t.start, t.line) for t in transcript.turns]


def parse_json(text: str):
    return parse_text(text, "x.json", "json", ".json")


def parse_jsonl(text: str):
    return parse_text(text, "x.jsonl", "jsonl", ".jsonl")


def test_json_list_of_turns_keeps_lines_and_times():
    t = parse_file(FIXTURES / "turns.json")
    assert t.format == "json"
    assert rows(t) == [
        ("Anna", "Hello there.", 1.5, 2),
        ("Bob", "Hi.", 62.0, 3),
        ("Anna", "No start here.", None, 5),
    ]
    assert all(tt.kind == SPEECH and tt.source.endswith("fixtures/turns.json") for tt in t.turns)


def test_json_object_with_turns_list():
    t = parse_file(FIXTURES / "turns_object.json")
    assert t.format == "json"
    assert rows(t) == [("Anna", "First.", 3.0, 1), ("Bob", "Second.", 65.0, 1)]


@pytest.mark.parametrize("key", ["turns", "segments", "utterances", "transcript"])
def test_json_object_list_keys(key):
    t = parse_json(f'{{"{key}": [{{"speaker": "A", "text": "t"}}]}}')
    assert rows(t) == [("A", "t", None, 1)]


def test_json_one_line_list_puts_every_turn_on_line_1():
    t = parse_json('[{"speaker": "A", "text": "one"}, {"speaker": "B", "text": "two"}]')
    assert rows(t) == [("A", "one", None, 1), ("B", "two", None, 1)]


def test_json_leading_whitespace_and_blank_lines_count_for_line_numbers():
    t = parse_json('\n\n  [\n{"speaker": "A", "text": "one"},\n\n{"speaker": "B", "text": "two"}]')
    assert rows(t) == [("A", "one", None, 4), ("B", "two", None, 6)]


@pytest.mark.parametrize(
    ("start", "seconds"),
    [("0", 0.0), ("12", 12.0), ("12.5", 12.5), ('"00:05:45"', 345.0), ('"1:02:03"', 3723.0), ('"05:45"', 345.0),
     ('"00:00:01,250"', 1.25), ("null", None)],
)
def test_start_may_be_seconds_or_hh_mm_ss(start, seconds):
    t = parse_json(f'[{{"speaker": "A", "text": "t", "start": {start}}}]')
    assert rows(t) == [("A", "t", seconds, 1)]


@pytest.mark.parametrize("start", ['"soon"', '"99:99"', "true", "[1]", '{"s": 1}'])
def test_unreadable_start_is_an_error(start):
    with pytest.raises(PersonaForgeError, match=r"^x\.json:1: item 1: .*start"):
        parse_json(f'[{{"speaker": "A", "text": "t", "start": {start}}}]')


def test_speaker_and_text_are_stripped_and_cleaned():
    t = parse_json('[{"speaker": "  Anna ", "text": "Well [laughs]  it\u2019s \u201cfine\u201d ."}]')
    assert rows(t) == [("Anna", "Well it\u2019s \u201cfine\u201d.", None, 1)]


def test_items_with_empty_text_or_speaker_are_skipped():
    t = parse_json(
        '[{"speaker": "A", "text": "[Applause]"},\n{"speaker": " ", "text": "x"},\n{"speaker": "B", "text": "y"}]'
    )
    assert rows(t) == [("B", "y", None, 3)]


def test_jsonl_keeps_line_numbers_and_skips_blank_lines():
    t = parse_file(FIXTURES / "turns.jsonl")
    assert t.format == "jsonl"
    assert rows(t) == [
        ("Anna", "First line.", 62.0, 1),
        ("Bob", "Third line.", 4.0, 3),
        ("Anna", "Fourth line.", None, 4),
    ]


def test_invalid_json_names_its_line():
    with pytest.raises(PersonaForgeError, match=r"^x\.json:3: invalid JSON"):
        parse_json('[\n{"speaker": "A", "text": "t"},\n{"speaker": "B" "text": "u"}\n]')


def test_invalid_jsonl_line_names_its_line():
    with pytest.raises(PersonaForgeError, match=r"^x\.jsonl:3: invalid JSON"):
        parse_jsonl('{"speaker": "A", "text": "t"}\n\n{"speaker": "B", "text": \n')


@pytest.mark.parametrize("missing", ["speaker", "text"])
def test_json_item_missing_a_key_is_an_error(missing):
    item = {"speaker": '"B"', "text": '"u"'}
    del item[missing]
    body = ", ".join(f'"{k}": {v}' for k, v in item.items())
    with pytest.raises(PersonaForgeError, match=rf"^x\.json:3: item 2 has no '{missing}'"):
        parse_json(f'[\n{{"speaker": "A", "text": "t"}},\n{{{body}}}\n]')


def test_jsonl_item_missing_speaker_is_an_error():
    with pytest.raises(PersonaForgeError, match=r"^x\.jsonl:2: item 2 has no 'speaker'"):
        parse_jsonl('{"speaker": "A", "text": "t"}\n{"text": "u"}\n')


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('"just a string"', r"^x\.json:1: expected a list"),
        ('{"title": "no list here"}', r"^x\.json:1: expected a list of turns"),
        ("[1, 2]", r"^x\.json:1: item 1 is not an object"),
        ('[{"speaker": 1, "text": "t"}]', r"^x\.json:1: item 1: 'speaker' and 'text' must be strings"),
        ("[]", r"^x\.json:1: no speaker turns found as format 'json'"),
    ],
)
def test_json_shape_errors(document, message):
    with pytest.raises(PersonaForgeError, match=message):
        parse_json(document)


def test_jsonl_item_that_is_not_an_object_is_an_error():
    with pytest.raises(PersonaForgeError, match=r"^x\.jsonl:1: item 1 is not an object"):
        parse_jsonl("[1, 2]\n")


def test_json_object_with_turns_list_keeps_each_items_line():
    t = parse_json(
        '{"title": "x",\n "turns": [\n  {"speaker": "A", "text": "one"},\n  {"speaker": "B", "text": "two"}\n]}\n'
    )
    assert rows(t) == [("A", "one", None, 3), ("B", "two", None, 4)]


@pytest.mark.parametrize(
    "document",
    [
        '[{"speaker": "A", "text": "t"}] trailing words',
        '[{"speaker": "A", "text": "t"}]\n[{"speaker": "B", "text": "u"}]',
    ],
)
def test_json_trailing_data_is_invalid_json(document):
    with pytest.raises(PersonaForgeError, match=r"^x\.json:\d+: invalid JSON"):
        parse_json(document)


BIG_INT = "1" + "0" * 400  # parses as a Python int too large for a float


@pytest.mark.parametrize("parse", [parse_json, parse_jsonl], ids=["json", "jsonl"])
def test_huge_integer_start_is_a_persona_forge_error(parse):
    text = f'{{"speaker": "A", "text": "t", "start": {BIG_INT}}}'
    with pytest.raises(PersonaForgeError):
        parse(f"[{text}]" if parse is parse_json else text)


@pytest.mark.parametrize("parse", [parse_json, parse_jsonl], ids=["json", "jsonl"])
def test_integer_literal_over_4300_digits_is_a_persona_forge_error(parse):
    text = '{"speaker": "A", "text": "t", "start": 1' + "0" * 5000 + "}"
    with pytest.raises(PersonaForgeError):
        parse(f"[{text}]" if parse is parse_json else text)


@pytest.mark.parametrize("parse", [parse_json, parse_jsonl], ids=["json", "jsonl"])
def test_deeply_nested_json_is_a_persona_forge_error(parse):
    with pytest.raises(PersonaForgeError):
        parse("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_start_is_rejected_or_dropped(value):
    try:
        t = parse_json(f'[{{"speaker": "A", "text": "t", "start": {value}}}]')
    except PersonaForgeError:
        return
    start = t.turns[0].start
    assert start is None or math.isfinite(start)


def test_lone_surrogate_escape_does_not_reach_the_text():
    try:
        t = parse_json('[{"speaker": "A", "text": "bad \\ud800 char"}]')
    except PersonaForgeError:
        return
    t.turns[0].text.encode("utf-8")
