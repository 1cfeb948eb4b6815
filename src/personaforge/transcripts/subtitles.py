"""SubRip (.srt) and WebVTT (.vtt): speakers from <v Name> tags or NAME: / - Name: prefixes."""

from __future__ import annotations

import html
import re

from personaforge.errors import PersonaForgeError
from personaforge.transcripts.base import Turn, clean_speech, looks_like_name, parse_time

TIMING = re.compile(r"^\s*(?P<start>[\d:.,]+)\s*-->\s*(?P<end>[\d:.,]+)")
VOICE = re.compile(r"<v(?:\.[^ >]*)?\s+(?P<name>[^>]+)>")
PREFIX = re.compile(r"^\s*(?:-\s*)?(?P<name>[A-Za-z][\w .'’()\-]{0,40}?)\s*:\s+(?P<text>\S.*)$")
DASH = re.compile(r"^\s*-\s+(?P<text>.*)$")
TAG = re.compile(r"</?[^>]+>")
# Words that introduce prose, not a speaker, when followed by a colon.
NOT_SPEAKERS = {"note", "notes", "warning", "translation", "caption", "music", "edit", "editor", "source"}


def _speaker_prefix(text: str) -> tuple[str | None, str]:
    match = PREFIX.match(text)
    if match and looks_like_name(match.group("name")):
        name = match.group("name").strip()
        # "Note: ..." style prose is not a speaker; speaker prefixes are names or ALL-CAPS labels.
        if name.casefold() in NOT_SPEAKERS:
            return None, text
        if name.isupper() or all(word[:1].isupper() for word in name.split() if word[:1].isalpha()):
            return name, match.group("text")
    return None, text


def _cue_utterances(lines: list[str]) -> list[tuple[str | None, str]]:
    """Split one cue's text into (speaker or None, text) utterances."""
    utterances: list[tuple[str | None, str]] = []
    for line in lines:
        voice = VOICE.search(line)
        speaker: str | None = None
        if voice:
            speaker = voice.group("name").strip()
            line = VOICE.sub("", line)
        line = html.unescape(TAG.sub("", line)).strip()
        if not line:
            continue
        if speaker is None:
            speaker, line = _speaker_prefix(line)
        if speaker is None and DASH.match(line):
            # "- text" inside a cue: a new (unnamed) speaker in a dialogue cue.
            utterances.append(("", DASH.match(line).group("text")))
            continue
        if speaker is None and utterances:
            name, previous = utterances[-1]
            utterances[-1] = (name, f"{previous} {line}")
        else:
            utterances.append((speaker, line))
    return utterances


def parse_subtitles(text: str, source: str, fmt: str) -> tuple[list[Turn], list[str]]:
    lines = text.splitlines()
    warnings: list[str] = []
    if fmt == "vtt" and not (lines and lines[0].lstrip("\ufeff").startswith("WEBVTT")):
        raise PersonaForgeError(f"{source}:1: a WebVTT file must start with 'WEBVTT'; check the file or use --format")
    turns: list[Turn] = []
    speaker: str | None = None
    unnamed = 0
    index = 0
    cues = 0
    while index < len(lines):
        match = TIMING.match(lines[index])
        if not match:
            index += 1
            continue
        start = parse_time(match.group("start"))
        if start is None:
            raise PersonaForgeError(f"{source}:{index + 1}: cannot read the cue time '{match.group('start')}'")
        cue_line = index + 1
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip():
            body.append(lines[index])
            index += 1
        cues += 1
        for name, utterance in _cue_utterances(body):
            if name:
                speaker = name
            elif name == "" or speaker is None:
                unnamed += 1
                speaker = speaker or "Unknown"
            cleaned = clean_speech(utterance)
            if not cleaned:
                continue
            if turns and turns[-1].speaker == speaker and name != "":
                turns[-1].text += " " + cleaned
                turns[-1].end_line = index
            else:
                turns.append(Turn(speaker=speaker, text=cleaned, start=start, source=source, line=cue_line,
                                  end_line=index))
    if cues == 0:
        raise PersonaForgeError(f"{source}:1: no subtitle cues ('00:00:01,000 --> 00:00:02,000') found")
    if unnamed:
        warnings.append(f"{source}: {unnamed} cue(s) had no speaker label; they were given to the previous speaker")
    return turns, warnings
