"""Format auto-detection: the extension first, then the layout whose label lines the content has most of."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from personaforge.transcripts.colon import find_labels
from personaforge.transcripts import descript, rev
from personaforge.transcripts.labelled import find_timed_labels
from personaforge.transcripts.otter import parse_label
from personaforge.transcripts.subtitles import TIMING
from personaforge.transcripts.whisper import looks_like_whisper

# Tie-break order: the older, stricter layouts first ("Name: (00:05)" is a Rev label and also a colon one).
TEXT_LAYOUTS = ("tab", "otter", "rev", "descript", "colon")
_TAB_LABEL = re.compile(r"^[^\t\s][^\t]{0,47}\t\S")


@dataclass(frozen=True)
class Detection:
    format: str | None
    votes: dict[str, int] = field(default_factory=dict)  # label lines per text layout
    alternatives: tuple[str, ...] = ()  # other layouts that fit nearly as well: the choice is a guess

    @property
    def ambiguous(self) -> bool:
        return bool(self.alternatives)


def _json_kind(text: str) -> str:
    return "whisper" if looks_like_whisper(text) else "json"


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def layout_votes(lines: list[str], known_speakers: set[str] | None = None) -> dict[str, int]:
    # Tab evidence: "Name<TAB>text" lines and tab-indented paragraphs (the "name alone, then tabbed text" form).
    return {
        "tab": sum(1 for line in lines if _TAB_LABEL.match(line) or (line.startswith("\t") and line.strip())),
        "otter": sum(1 for line in lines if parse_label(line)),
        "rev": len(find_timed_labels(lines, rev.PATTERNS)),
        "descript": len(find_timed_labels(lines, descript.PATTERNS)),
        "colon": len(find_labels(lines, known_speakers)[0]),
    }


def detect(text: str, suffix: str, known_speakers: set[str] | None = None) -> Detection:
    suffix = suffix.lower()
    if suffix in (".srt", ".vtt", ".jsonl"):
        return Detection(suffix[1:])
    if suffix == ".json":
        return Detection(_json_kind(text))
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("WEBVTT"):
        return Detection("vtt")
    lines = text.splitlines()
    if suffix not in (".txt", ".docx") and head[:1] and head[0] in "[{":
        if head.startswith("{") and "\n{" in head:
            return Detection("jsonl")
        # "[00:01:02] Name: text" also starts with a bracket: JSON only if it parses, or if it is no Descript file.
        if _parses_as_json(text) or not descript.parse_descript_label(head.splitlines()[0]):
            return Detection(_json_kind(text))
    if suffix not in (".txt", ".docx") and any(TIMING.match(line) for line in lines[:20]):
        return Detection("srt")
    votes = layout_votes(lines, known_speakers)
    best = max(TEXT_LAYOUTS, key=lambda name: (votes[name], -TEXT_LAYOUTS.index(name)))
    if votes[best] == 0:
        return Detection(None, votes)
    # A runner-up with half as many label lines could be the right reading: say so instead of guessing quietly.
    alternatives = tuple(name for name in TEXT_LAYOUTS
                         if name != best and votes[name] >= 2 and 2 * votes[name] >= votes[best])
    return Detection(best, votes, alternatives)
