"""Rev exports: ``Speaker Name (HH:MM:SS):`` (or ``(MM:SS)``) on its own line, the text on the following lines.

Also the ``Name: (MM:SS) text`` form of Rev's published transcripts, and text on the label's own line.
"""

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
# "Leila Haddad (01:02:03): text" — the name may carry its own parenthetical before the time.
TIME_THEN_COLON = re.compile(rf"^(?P<name>\S.*?)\s*\((?P<time>{_TIME})\)\s*:(?:\s+(?P<body>.*))?$")
# "Leila Haddad: (01:02:03) text"
COLON_THEN_TIME = re.compile(rf"^(?P<name>\S[^:]*?)\s*:\s*\((?P<time>{_TIME})\)(?:\s+(?P<body>.*))?$")
PATTERNS = (TIME_THEN_COLON, COLON_THEN_TIME)


def parse_rev_label(line: str) -> Label | None:
    return timed_label(line, PATTERNS)


def parse_rev(text: str, source: str) -> tuple[list[Turn], list[str]]:
    lines = text.splitlines()
    check_label_times(lines, source, PATTERNS)
    # The timestamp in a fixed place makes a label unmistakable: no repetition
    # needed, except for lower-case names with text on the same line.
    return build_turns(lines, find_labels(lines), source)


def find_labels(lines: list[str]) -> dict[int, Label]:
    labels = {index: label for index, line in enumerate(lines) if (label := parse_rev_label(line))}
    return drop_lowercase_one_offs(labels)
