"""A small dataset on disk as `persona data build` leaves it (candidates.jsonl, dataset_card.json, the transcript it
names) and a studio served from a thread on a free port. The browser fixtures are tests/conftest.py's."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from personaforge.fileio import display_path
from personaforge.prompting import Exchange, chat_messages, plain_completion, plain_prompt

CARDS = """\
- name: Ada Bell
  aliases: [Ada]
  description: A lighthouse keeper on a windy island.
  topics: [lighthouses, storms]
- name: Ben Ortiz
  aliases: [Ben]
  description: A baker who gets up at three.
  topics: [bread, ovens]
- name: Quinn
  aliases: [Interviewer]
  role: interviewer
"""
XSS = 'Watch this: <script>alert(1)</script> and <img src=x onerror="window.__xss = 1"> end.'
TRANSCRIPT = [
    ("Interviewer", "What do you do when the fog comes in?"),
    ("Ada", "The lamp turns every ten seconds and I count each one when the fog rolls in from the west."),
    ("Interviewer", "And the storms?"),
    ("Ada", "Storms arrive sideways here, salt on the windows, and the whole tower hums like a bottle."),
    ("Interviewer", "Ben, when do you start?"),
    ("Ben", "The oven takes an hour to heat, so I light it at three while the street is asleep."),
    ("Interviewer", "Anything else?"),
    ("Ben", XSS),
    ("Interviewer", "Who taught you?"),
    ("Ben", "My grandmother baked on a wood fire and burned exactly one loaf in forty years."),
]


@dataclass
class Dataset:
    root: Path
    folder: Path
    transcript: Path
    review: Path
    records: list[dict]

    def record(self, record_id: str) -> dict:
        return next(r for r in self.records if r["id"] == record_id)

    def decisions(self) -> list[dict]:
        if not self.review.exists():
            return []
        return [json.loads(line) for line in self.review.read_text(encoding="utf-8").splitlines() if line.strip()]


def _record(record_id, persona, kind, question, answer, line, *, generator="transcript", split="train",
            asked="transcript", fit=None, context=()):
    system = f"You are {persona}."
    source = {"file": None, "lines": [line, line], "chunk": 0, "question": asked}
    if fit is not None:
        source["fit"] = fit
    return {"id": record_id, "persona": persona, "type": kind, "segment": record_id.split(":")[1],
            "source": source, "generator": generator, "split": split,
            "prompt": plain_prompt(system, persona, question, context), "completion": plain_completion(answer),
            "messages": chat_messages(system, question, context, answer)}


def write_dataset(root: Path, lines: list[tuple[str, str]] = TRANSCRIPT) -> Dataset:
    """Transcript, cards, candidates and card; record ids and lines as a build would give them."""
    root.mkdir(parents=True, exist_ok=True)
    cards = root / "cards.yaml"
    cards.write_text(CARDS, encoding="utf-8")
    transcript = root / "talk.txt"
    transcript.write_text("".join(f"{who}\t{text}\n" for who, text in lines), encoding="utf-8")
    text = dict(enumerate((t for _, t in lines), start=1))
    records = [
        _record("extracted:talk-L2", "Ada Bell", "extracted", text[1], text[2], 2),
        _record("extracted:talk-L4", "Ada Bell", "extracted", text[3], text[4], 4,
                context=(Exchange(text[1], text[2]),)),
        _record("transformed:talk-L2", "Ada Bell", "transformed", "When the fog comes in, what do you do?", text[2], 2,
                generator="template", asked="rephrased"),
        _record("extracted:talk-L6", "Ben Ortiz", "extracted", text[5], text[6], 6, split="eval"),
        _record("extracted:talk-L8", "Ben Ortiz", "extracted", text[7], text[8], 8),
        _record("hypothetical:talk-L10:bread", "Ben Ortiz", "hypothetical", "Tell me about bread.", text[10], 10,
                generator="template", asked="topic", fit=0.41),
    ]
    shown = display_path(transcript)
    for record in records:
        record["source"]["file"] = shown
    folder = root / "data"
    folder.mkdir(exist_ok=True)
    (folder / "candidates.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    card = {"inputs": {"transcripts": [{"file": shown, "format": "tab",
                                        "sha256": hashlib.sha256(transcript.read_bytes()).hexdigest()}]},
            "config": {"format": "auto", "personas": [str(cards)]},
            "quality": {"fit": {"threshold": 0.3}}}
    (folder / "dataset_card.json").write_text(json.dumps(card), encoding="utf-8")
    return Dataset(root, folder, transcript, root / "data.review.jsonl", records)


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return write_dataset(tmp_path / "project")


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT/ (plus ?token=... when the token is required)
    base: str  # http://127.0.0.1:PORT
    token: str
    dataset: Dataset


def serve(dataset: Dataset, host: str = "127.0.0.1", require_token: bool = False):
    """A context manager serving the dataset's studio from a thread; binds 127.0.0.1 even in token mode."""
    from personaforge.studio.app import Background, create_app
    from personaforge.studio.security import Security
    from personaforge.studio.state import Studio

    security = Security(host="192.0.2.1" if require_token else host)
    studio = Studio.open(dataset.folder)
    background = Background(create_app(studio, security), host="127.0.0.1", port=0, security=security)
    return background, security


@pytest.fixture
def served(dataset) -> Iterator[Served]:
    background, security = serve(dataset)
    with background as url:
        yield Served(url, url.rstrip("/"), security.token, dataset)


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def http(method: str, url: str, body=None, headers: dict | None = None, raw: bytes | None = None) -> Reply:
    """One request without following redirects; any status comes back as a Reply."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    all_headers = {**({"Content-Type": "application/json"} if data is not None else {}), **(headers or {})}
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read())
