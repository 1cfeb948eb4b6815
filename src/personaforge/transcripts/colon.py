"""``Name: text`` transcripts (oral histories, press interviews, podcasts, ``Q:`` / ``A:`` layouts).

A colon is common in speech ("There was one rule: never swim alone."), so a line is a label only when its name
is shaped like a label and the file repeats it (or a persona card knows it); a name used once counts only after
the first repeated label, at the start of a paragraph, written in ALL CAPS or in the style the file's labels use.
"""

from __future__ import annotations

import re

from personaforge.transcripts.base import (NOT_SPEAKERS, Turn, label_style, looks_like_name, name_shaped, normalize,
                                          split_label)
from personaforge.transcripts.descript import parse_descript_label
from personaforge.transcripts.labelled import Label, build_turns, is_heading
from personaforge.transcripts.rev import parse_rev_label

# The colon must be followed by a space or end the line: "10:30" and "https://" are not labels.
_COLON = re.compile(r"^(?P<name>[^\s:][^:]{0,63}?)\s*:(?:\s+(?P<body>.*))?$")
_SENTENCE_END = ('.', '?', '!', '…', '"', '”', '’', "'", ')', ']', '-', '—', '–', ':')


def _candidate(line: str) -> tuple[str, str] | None:
    """(name, body) if the line starts with something that could be a label."""
    match = _COLON.match(line.strip())
    if not match:
        return None
    name = match.group("name").strip()
    if not looks_like_name(name) or not name_shaped(name):
        return None
    return name, match.group("body") or ""


def _is_note(name: str) -> bool:
    return normalize(split_label(name)[0]) in NOT_SPEAKERS


def find_labels(lines: list[str], known_speakers: set[str] | None = None) -> tuple[dict[int, Label], set[int]]:
    """Label lines (0-based) and note lines ("Note: ...", "Date: ...") of a ``Name: text`` file."""
    candidates: dict[int, tuple[str, str]] = {}
    notes: set[int] = set()
    for index, line in enumerate(lines):
        # Rev and Descript labels carry a time; they belong to those formats, not to this one.
        if parse_rev_label(line) or parse_descript_label(line):
            continue
        found = _candidate(line)
        if found is None:
            continue
        # "Note: ...", "b-roll: ...", and headings such as "TUESDAY: THE PLATFORM" are never speech.
        if _is_note(found[0]) or (found[1] and is_heading(line.strip())):
            notes.add(index)
        else:
            candidates[index] = found
    counts: dict[str, int] = {}
    for name, _ in candidates.values():
        counts[normalize(name)] = counts.get(normalize(name), 0) + 1
    known = {normalize(s) for s in known_speakers or ()}
    trusted = {i for i, (name, _) in candidates.items() if counts[normalize(name)] > 1 or normalize(name) in known}
    if not trusted:
        return {}, notes
    first = min(trusted)
    # One-off labels (an audience member who speaks once) must be ALL CAPS ("AUDIENCE MEMBER:"), or capitalised
    # like the labels the file repeats; never lower case, which is how a wrapped sentence line starts.
    styles = ({label_style(candidates[i][0]) for i in trusted} | {"caps"}) - {"lower"}
    labels: dict[int, Label] = {}
    for index, (name, body) in candidates.items():
        if index in trusted or (index > first and label_style(name) in styles and len(name.split()) <= 4
                                and _starts_paragraph(lines, index) and _has_speech(lines, index, body)):
            labels[index] = Label(speaker=name, start=None, body=body)
    return labels, notes


def _starts_paragraph(lines: list[str], index: int) -> bool:
    """After a blank line or a finished sentence: not the wrapped middle of someone's sentence."""
    previous = lines[index - 1].strip() if index else ""
    return not previous or previous.endswith(_SENTENCE_END)


def _has_speech(lines: list[str], index: int, body: str) -> bool:
    return bool(body.strip()) or (index + 1 < len(lines) and bool(lines[index + 1].strip()))


def parse_colon(text: str, source: str, known_speakers: set[str] | None = None) -> tuple[list[Turn], list[str]]:
    lines = text.splitlines()
    labels, notes = find_labels(lines, known_speakers)
    return build_turns(lines, labels, source, skip=notes)
