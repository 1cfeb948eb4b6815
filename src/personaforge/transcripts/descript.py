"""Descript and Trint text exports: ``[HH:MM:SS] Name: text``, and ``Name [HH:MM:SS]`` (alone on its line, the
text after it, or followed by ``: text``)."""

from __future__ import annotations

import re

from personaforge.transcripts.base import Turn
from personaforge.transcripts.labelled import TIMECODE, Label, parse_timed, timed_label

# "[00:01:02] Leila Haddad: text" (Descript with timecodes)
TIME_FIRST = re.compile(rf"^\[(?P<time>{TIMECODE})\]\s*(?P<name>[^\s\[\]:][^\[\]:]*?)\s*:(?:\s+(?P<body>.*))?$")
# "Leila Haddad [00:01:02]" alone, or followed by ": text" / "- text" (Trint)
TIME_AFTER = re.compile(rf"^(?P<name>[^\s\[\]:][^\[\]:]*?)\s*\[(?P<time>{TIMECODE})\]\s*(?:[:\-–—]\s*(?P<body>.*))?$")
PATTERNS = (TIME_FIRST, TIME_AFTER)


def parse_descript_label(line: str) -> Label | None:
    return timed_label(line, PATTERNS)


def parse_descript(text: str, source: str) -> tuple[list[Turn], list[str]]:
    return parse_timed(text, source, PATTERNS)
