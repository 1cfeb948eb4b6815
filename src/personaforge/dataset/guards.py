"""Only one speaker per answer: find transcript labels and timestamps that slipped into a turn's text.

A parser that does not recognise a speaker label (an Otter line like ``audience member (front, in Danish)
1:01:18``) glues the next speaker's words onto the previous turn. The build cannot know whose words
follow, so everything from the label on is kept out of the records, with a warning naming file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TIMECODE = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
# 1:01:18 or 00:05:45 anywhere; a bracketed [12:34] or (12:34); an SRT arrow.
INLINE_TIMESTAMP = re.compile(rf"\b\d{{1,2}}:\d{{2}}:\d{{2}}\b|[\[(]{TIMECODE}[\])]|-->")
# A line that is a label with a time: "Name  12:34", "Name (front)  1:01:18", "12:34 Name:", "Name (12:34):"
LABEL_WITH_TIME = re.compile(
    rf"^\s*(?:[^\s:][^\n:]{{0,60}}?(?:\s{{2,}}|\t|\s+\()\s*{TIMECODE}\)?:?\s*$"
    rf"|{TIMECODE}\s+[^\s:][^\n:]{{0,40}}:)")


class LabelGuard:
    """Finds, line by line, the first sign of another speaker in a persona's turn."""

    def __init__(self, labels: Iterable[str]) -> None:
        names = sorted({" ".join(label.split()) for label in labels if len(label.strip()) >= 2}, key=len, reverse=True)
        pattern = "|".join(re.escape(name) for name in names)
        # A known speaker label opening a line, as a label: "Sam: ...", "Sam<TAB>...".
        self._label_line = re.compile(rf"^\s*(?:{pattern})\s*(?::|\t)", re.IGNORECASE) if pattern else None

    def problem(self, line: str) -> str | None:
        """The label or timestamp text found in one line of a turn, or None."""
        match = LABEL_WITH_TIME.search(line) or INLINE_TIMESTAMP.search(line)
        if match is None and self._label_line is not None:
            match = self._label_line.search(line)
        if match is None:
            return None
        return " ".join(line.split()) if LABEL_WITH_TIME.search(line) else " ".join(match.group(0).split())

    def text_problem(self, text: str) -> str | None:
        for line in text.split("\n"):
            found = self.problem(line)
            if found:
                return found
        return None
