"""Property tests: every parser entry either parses or raises PersonaForgeError, and well-formed
tab-labelled transcripts round-trip exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import EXTENSIONS, FORMATS, SPEECH, Transcript, parse_file, parse_text

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of every supported format, so generated text often gets past the first checks of a parser.
FRAGMENTS = [
    "Anna", "Bob Lee", "jasper", "researcher (korean)", "\t", "    ", "00:05:45", "1:02", "0:00", "1:02:03", "99:99",
    "23:50 ", "WEBVTT", " --> ", "00:00:01,000", "00:00:02.500", "<v Bob>", "</v>", "<i>", "- ", "JASPER: ", "Mira:",
    "[laughs]", "[", "]", "{", "}", '"speaker": ', '"text": ', '"start": ', '"x"', '"00:01"', ",", ":", "1.5", "null",
    "Subtitles:", "SUBTITLES:", "TEXT on screen:", "Text on Screen - editor voice:",
    "Wed, May 03, 2023 1:02PM \u2022 1:26:06", "\n", "\n\n", "\r\n", " ", "a", "\u00e9", "\u2019", "\u201c", "\ufeff",
    "&amp;", "\u2014", "(", ")", ".", "?",
    # the newer layouts: Name: text, Rev, Descript/Trint, WhisperX, Otter labels with qualifiers
    "Q: ", "A: ", "INTERVIEWER: ", "Haas: ", "There was one rule: ", " (00:01:02):", "Anna: (00:05) ", "[00:01:02] ",
    " [00:00:05]", "(front, in Danish)", '"segments": [', '"end": 1', '"speaker": "SPEAKER_00"', "[Tape 1]",
]
fragment_text = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=30).map("".join)
any_text = st.one_of(st.text(), fragment_text)
any_bytes = st.one_of(
    st.binary(max_size=300),
    any_text.map(lambda s: s.encode("utf-8")),
    any_text.map(lambda s: b"\xef\xbb\xbf" + s.encode("utf-8")),
    any_text.map(lambda s: s.encode("cp1252", errors="ignore")),
)


def check_parsed(transcript: Transcript) -> None:
    assert isinstance(transcript, Transcript)
    for turn in transcript.turns:
        assert isinstance(turn.text, str) and turn.text.strip()
        assert isinstance(turn.speaker, str)
        assert isinstance(turn.line, int) and turn.line >= 1
        assert turn.start is None or isinstance(turn.start, float)


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(text=any_text)
def test_parse_text_parses_or_raises_persona_forge_error(fmt, text):
    try:
        transcript = parse_text(text, "x.txt", fmt)
    except PersonaForgeError as exc:
        assert "\n" not in str(exc)
        return
    check_parsed(transcript)


@SETTINGS
@given(text=any_text, suffix=st.sampled_from([*EXTENSIONS, ".md", ""]))
def test_auto_detection_with_any_suffix_parses_or_raises_persona_forge_error(text, suffix):
    try:
        transcript = parse_text(text, f"x{suffix}", "auto", suffix)
    except PersonaForgeError:
        return
    check_parsed(transcript)


@pytest.fixture(scope="module")
def scratch_dir():
    with tempfile.TemporaryDirectory(prefix="pf-transcripts-") as folder:
        yield Path(folder)


@pytest.mark.parametrize("suffix", EXTENSIONS)
@SETTINGS
@given(data=any_bytes)
def test_parse_file_on_arbitrary_bytes_parses_or_raises_persona_forge_error(scratch_dir, suffix, data):
    path = scratch_dir / f"sample{suffix}"
    path.write_bytes(data)
    try:
        transcript = parse_file(path)
    except PersonaForgeError as exc:
        assert "\n" not in str(exc)
        return
    check_parsed(transcript)
    assert transcript.encoding in ("utf-8", "utf-8-sig", "cp1252")


# --- round trip: well-formed tab-labelled transcripts ------------------------------------------------------------

SPEAKERS = ["Anna", "Bob Lee", "Mira Vos", "jasper", "Dr. Okafor", "O'Neill", "Speaker 2"]
WORDS = ["harbour", "boats", "it\u2019s", "caf\u00e9", "\u201cquiet\u201d", "well,", "we", "rowed", "north", "and",
         "then", "Berlin", "1989", "winter", "a", "long", "year", "nobody", "knew", "x"]

sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=10),
    st.sampled_from([".", "?", "!", ""]),
)
turn_spec = st.tuples(
    st.sampled_from(SPEAKERS),
    st.lists(sentence, min_size=1, max_size=3),  # paragraphs
    st.one_of(st.none(), st.integers(min_value=0, max_value=99 * 3600 + 3599)),  # timecode before the turn
    st.sampled_from(["inline", "alone"]),  # "Name<TAB>text" or "Name" then a tab-indented line
    st.integers(min_value=0, max_value=2),  # blank lines after the turn
)


def _timecode(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@SETTINGS
@given(
    specs=st.lists(turn_spec, min_size=1, max_size=8),
    title=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_well_formed_tab_transcripts_round_trip(specs, title, newline):
    lines: list[str] = []
    if title:
        lines += ["Harbour Stories \u2014 interview transcript", "Draft 2, not for release", ""]
    expected = []
    for speaker, paragraphs, seconds, layout, blanks in specs:
        if seconds is not None:
            lines.append(_timecode(seconds))
        turn_line = len(lines) + 1
        if layout == "inline":
            lines.append(f"{speaker}\t{paragraphs[0]}")
        else:
            lines += [speaker, f"\t{paragraphs[0]}"]
        lines += [f"\t{p}" for p in paragraphs[1:]]
        lines += [""] * blanks
        expected.append((speaker, "\n".join(paragraphs), None if seconds is None else float(seconds), turn_line))
    text = newline.join(lines) + newline

    parsed = [parse_text(text, "x.txt", "tab")]
    if any(layout == "inline" for _, _, _, layout, _ in specs):
        # Auto-detection needs at least one "Name<TAB>text" line (see test_detect_and_errors.py for the
        # name-alone-only case).
        parsed.append(parse_text(text, "x.txt", "auto"))
    for transcript in parsed:
        assert transcript.format == "tab"
        assert [(t.speaker, t.text, t.start, t.line) for t in transcript.turns] == expected
        assert all(t.kind == SPEECH and t.source == "x.txt" for t in transcript.turns)
