"""Descript and Trint text exports: ``[HH:MM:SS] Name: text``, and ``Name [HH:MM:SS]`` (alone on its line, the
text after it, or followed by ``: text``)."""

from __future__ import annotations

import re

from personaforge.transcripts.base import Turn
from personaforge.transcripts.labelled import (
    Label,
    build_turns,
    check_label_times,
    drop_lowercase_one_offs,
    timed_label,
)

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
# "[00:01:02] Leila Haddad: text" (Descript with timecodes)
TIME_FIRST = re.compile(rf"^\[(?P<time>{_TIME})\]\s*(?P<name>[^\s\[\]:][^\[\]:]*?)\s*:(?:\s+(?P<body>.*))?$")
# "Leila Haddad [00:01:02]" alone, or followed by ": text" / "- text" (Trint)
TIME_AFTER = re.compile(rf"^(?P<name>[^\s\[\]:][^\[\]:]*?)\s*\[(?P<time>{_TIME})\]\s*(?:[:\-–—]\s*(?P<body>.*))?$")
PATTERNS = (TIME_FIRST, TIME_AFTER)


def parse_descript_label(line: str) -> Label | None:
    return timed_label(line, PATTERNS)


def parse_descript(text: str, source: str) -> tuple[list[Turn], list[str]]:
    lines = text.splitlines()
    check_label_times(lines, source, PATTERNS)
    # A bracketed timecode in a fixed place makes a label unmistakable: no repetition
    # needed, except for lower-case names with text on the same line.
    return build_turns(lines, find_labels(lines), source)


def find_labels(lines: list[str]) -> dict[int, Label]:
    labels = {index: label for index, line in enumerate(lines) if (label := parse_descript_label(line))}
    return drop_lowercase_one_offs(labels)
