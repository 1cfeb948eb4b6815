"""Where a record came from: the transcript turns around it, with the answer's own words marked.

Only the transcripts the dataset card lists as the build's inputs are read; a request names a record id, never a
path. Files are parsed with the build's own parser and settings, so lines and speakers match what the build saw.
"""

from __future__ import annotations

import hashlib
import re
import threading
from difflib import SequenceMatcher
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.transcripts import SPEECH, Transcript, parse_file

WINDOW = 2  # turns shown before and after the record's own turns
MIN_RUN = 3  # words in a row that count as the answer's own (shorter matches are chance)
AROUND_WORDS = 60  # a turn around the record's own is cut to the words nearest to it
_TOKEN = re.compile(r"\S+")
_EDGE = re.compile(r"^\W+|\W+$")


def _norm(word: str) -> str:
    return _EDGE.sub("", word.replace("’", "'").casefold())


class Provenance:
    """Transcript excerpts for records, from the files the build read (parsed once, again when a file changes)."""

    def __init__(self, card: dict, known_speakers: set[str] | None) -> None:
        inputs = (card.get("inputs") or {}).get("transcripts") or []
        self.allowed = {str(entry["file"]): entry for entry in inputs if isinstance(entry, dict) and "file" in entry}
        self.format = str((card.get("config") or {}).get("format", "auto"))
        self.known = known_speakers
        self._cache: dict[str, tuple[tuple[int, int], Transcript, str]] = {}
        self._lock = threading.Lock()

    def _transcript(self, name: str) -> tuple[Transcript, bool]:
        """The parsed file and whether it changed since the build (its sha256 differs from the card's)."""
        path = Path(name)
        stat = path.stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(name)
            if cached is None or cached[0] != stamp:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                cached = (stamp, parse_file(path, self.format, self.known), digest)
                self._cache[name] = cached
        return cached[1], cached[2] != self.allowed[name].get("sha256")

    def excerpt(self, record: dict, answer: str) -> dict:
        source = record.get("source") or {}
        if "card" in source and "file" not in source:
            return {"kind": "card", "file": str(source["card"]), "turns": [],
                    "note": "written from the persona card (an out-of-domain deflection): no transcript passage"}
        name = str(source.get("file", ""))
        lines = source.get("lines") or [0, 0]
        base = {"kind": "transcript", "file": name, "lines": lines, "turns": []}
        if name not in self.allowed:
            return {**base, "note": "the record names a file that is not among the build's transcripts; not shown"}
        try:
            transcript, changed = self._transcript(name)
        except FileNotFoundError:
            return {**base, "note": f"{name} is not there any more (moved, or the studio runs from another folder)"}
        except (OSError, PersonaForgeError) as exc:
            return {**base, "note": f"{name} cannot be read now: {exc}"}
        first, last = int(lines[0]), int(lines[-1])
        turns = transcript.turns
        own = [i for i, t in enumerate(turns) if t.kind == SPEECH and t.line <= last and t.end_line >= first]
        if not own:
            return {**base, "changed_since_build": changed,
                    "note": f"no turn at lines {first}-{last} of {name} now" + (" (the file changed since the build;"
                                                                                  " rebuild)" if changed else "")}
        start, end = max(0, own[0] - WINDOW), min(len(turns), own[-1] + WINDOW + 1)
        asked = (source.get("question") == "transcript" and own[0] > 0)
        shown = list(range(start, end))
        marks, coverage = _mark([turns[i].text for i in shown], answer)
        out_turns = []
        speakers = set()
        for i, spans in zip(shown, marks):
            turn = turns[i]
            role = "answer" if i in own else ("question" if asked and i == own[0] - 1 else "around")
            if any(s["mark"] for s in spans):
                speakers.add(turn.speaker)
            elif role != "answer":
                spans = _near(spans[0]["text"] if spans else "", before=i < own[0])
            out_turns.append({"speaker": turn.speaker, "line": turn.line, "end_line": turn.end_line,
                              "kind": turn.kind, "role": role, "spans": spans})
        notes = []
        if changed:
            notes.append("the transcript changed since the build; rebuild to see the record as it now is")
        if coverage < 0.999:
            notes.append(f"{coverage:.0%} of the answer's words are found in this excerpt")
        if len(speakers) > 1:
            notes.append(f"the answer's words appear in turns of {len(speakers)} speakers: {', '.join(sorted(speakers))}")
        return {**base, "turns": out_turns, "coverage": round(coverage, 3), "changed_since_build": changed,
                "marked_speakers": sorted(speakers), "note": "; ".join(notes)}


def _near(text: str, before: bool) -> list[dict]:
    """A turn around the record's own, cut to the words nearest to it (the end of a turn before, the start of one
    after)."""
    words = text.split()
    if len(words) <= AROUND_WORDS:
        return [{"text": text, "mark": False}]
    kept = " ".join(words[-AROUND_WORDS:]) if before else " ".join(words[:AROUND_WORDS])
    return [{"text": f"… {kept}" if before else f"{kept} …", "mark": False}]


def _mark(texts: list[str], answer: str) -> tuple[list[list[dict]], float]:
    """Split each text into spans, marking the runs of words the answer shares with it (in order); and the share
    of the answer's words found."""
    tokens = [(index, m.start(), m.end(), _norm(m.group())) for index, text in enumerate(texts)
              for m in _TOKEN.finditer(text)]
    tokens = [t for t in tokens if t[3]]
    wanted = [w for w in (_norm(m.group()) for m in _TOKEN.finditer(answer)) if w]
    marked: set[int] = set()
    found = 0
    if tokens and wanted:
        matcher = SequenceMatcher(None, [t[3] for t in tokens], wanted, autojunk=False)
        least = min(MIN_RUN, len(wanted))
        for block in matcher.get_matching_blocks():
            if block.size >= least:
                marked.update(range(block.a, block.a + block.size))
                found += block.size
    per_text: list[list[tuple[int, int]]] = [[] for _ in texts]
    for position in sorted(marked):
        index, begin, finish, _ = tokens[position]
        runs = per_text[index]
        # words marked one after another form one span, with the spaces between them
        if runs and position - 1 in marked and tokens[position - 1][0] == index:
            runs[-1] = (runs[-1][0], finish)
        else:
            runs.append((begin, finish))
    spans_of: list[list[dict]] = []
    for text, runs in zip(texts, per_text):
        spans: list[dict] = []
        at = 0
        for begin, finish in runs:
            if begin > at:
                spans.append({"text": text[at:begin], "mark": False})
            spans.append({"text": text[begin:finish], "mark": True})
            at = finish
        if at < len(text):
            spans.append({"text": text[at:], "mark": False})
        spans_of.append(spans)
    return spans_of, (found / len(wanted) if wanted else 1.0)
