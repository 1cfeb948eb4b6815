"""Rev exports: ``Speaker Name (HH:MM:SS):`` (or ``(MM:SS)``) on its own line, the text on the following lines.

Also the ``Name: (MM:SS) text`` form of Rev's published transcripts, and text on the label's own line.
"""

from __future__ import annotations

import re

from personaforge.transcripts.base import Turn
from personaforge.transcripts.labelled import TIMECODE, Label, parse_timed, timed_label

# "Leila Haddad (01:02:03): text" — the name may carry its own parenthetical before the time.
TIME_THEN_COLON = re.compile(rf"^(?P<name>\S.*?)\s*\((?P<time>{TIMECODE})\)\s*:(?:\s+(?P<body>.*))?$")
# "Leila Haddad: (01:02:03) text"
COLON_THEN_TIME = re.compile(rf"^(?P<name>\S[^:]*?)\s*:\s*\((?P<time>{TIMECODE})\)(?:\s+(?P<body>.*))?$")
PATTERNS = (TIME_THEN_COLON, COLON_THEN_TIME)


def parse_rev_label(line: str) -> Label | None:
    return timed_label(line, PATTERNS)


def parse_rev(text: str, source: str) -> tuple[list[Turn], list[str]]:
    return parse_timed(text, source, PATTERNS)
