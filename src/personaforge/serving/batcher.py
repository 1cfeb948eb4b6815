"""Concurrent chat requests decoded together: one thread owns the model and runs the batched generation
(generate.generate_together) on every request waiting when it is free.

- Requests that arrive within ``gather_s`` of each other while the model is idle share a batch; requests that
  arrive while a batch runs wait for it and then go together. A batch holds at most ``max_batch`` requests, all
  with the same decoding settings (max_tokens may differ: each row stops at its own).
- Every decode step is watched: each row's new token is decoded, passed through the request's stop filter
  (chat.StopFilter, as one-at-a-time chat does) and sent to the request as text. A row ends at its end token, its
  stop string, its own max_tokens, or when its client left (``cancel``): a stopping criterion tells generate so,
  and a batch whose rows have all ended stops.
- Greedy answers are the ones a request gets alone. Sampled answers are seeded per batch, so they depend on which
  requests shared it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch

from personaforge.chat import StopFilter
from personaforge.generate import GenerationSettings, generate_together, split_stops

Event = Callable[[str, object], None]  # ("text", piece) | ("done", job) | ("error", exception)


@dataclass(eq=False)
class Job:
    prompt_ids: list[int]
    settings: GenerationSettings
    stops: list[str]                 # extra stop strings of this request
    on_event: Event
    cancel: threading.Event = field(default_factory=threading.Event)
    text: str = ""
    completion_tokens: int = 0
    finish_reason: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_ids)


def batch_key(settings: GenerationSettings) -> GenerationSettings:
    """Requests whose settings differ only here share a batch: max_new_tokens always, seed and top_p when greedy."""
    if settings.temperature == 0:
        return replace(settings, max_new_tokens=0, seed=0, top_p=1.0, batch_size=1)
    return replace(settings, max_new_tokens=0, batch_size=1)


class _Row:
    def __init__(self, job: Job, tokenizer, eos: set[int], text_stops: list[str]) -> None:
        self.job, self.tokenizer = job, tokenizer
        stop_ids, own_text_stops = split_stops(tokenizer, job.stops)
        self.eos = eos | stop_ids
        self.filter = StopFilter([*text_stops, *own_text_stops])
        self.tokens: list[int] = []
        self.decoded = ""
        self.done = False
        self.ended = False  # by an end token or a stop string (else by length or a cancel)

    def step(self, token: int) -> None:
        if self.done:
            return
        if self.job.cancel.is_set():
            self.done = True
            return
        self.tokens.append(token)
        if token in self.eos:
            self.done = self.ended = True
            return
        self._feed(final=False)
        if self.filter.stopped:
            self.done = self.ended = True
        elif len(self.tokens) >= self.job.settings.max_new_tokens:
            self.done = True

    def _feed(self, final: bool) -> None:
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return  # a character split across tokens: wait for the rest
        piece = self.filter.feed(text[len(self.decoded):]) if text.startswith(self.decoded) else ""
        self.decoded = text
        if final:
            piece += self.filter.finish()
        self._emit(piece)

    def _emit(self, piece: str) -> None:
        if piece:
            self.job.text += piece
            self.job.on_event("text", piece)

    def finish(self) -> None:
        if not self.filter.stopped:
            self._feed(final=True)
        job = self.job
        job.completion_tokens = len(self.tokens)
        ended = self.ended or self.filter.stopped
        job.finish_reason = "length" if not ended and len(self.tokens) >= job.settings.max_new_tokens else "stop"
        job.on_event("done", job)


class _Steps:
    """A generate() streamer: the prompt first (ignored), then one token per row per step."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows

    def put(self, value: torch.Tensor) -> None:
        if value.dim() != 1:
            return
        for row, token in zip(self.rows, value.tolist()):
            row.step(int(token))

    def end(self) -> None:
        pass


class _RowsDone:
    """A stopping criterion: a row is finished once its request has what it needs, or its client left."""

    def __init__(self, rows: list[_Row]) -> None:
        self.rows = rows

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        done = [row.done or row.job.cancel.is_set() for row in self.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class Batcher:
    def __init__(self, session, max_batch: int = 16, gather_s: float = 0.02,
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.session = session
        self.max_batch = max(1, max_batch)
        self.gather_s = gather_s
        self.log = log
        stop_ids, self.text_stops = split_stops(session.tokenizer, session.stop_strings)
        self.eos = set(session.eos_ids) | stop_ids
        self.pending: deque[Job] = deque()
        self.ready = threading.Condition()
        self.stopping = False
        self.batches: list[int] = []  # sizes of the batches run (a record for tests and the bench)
        self.finished: deque[Job] = deque(maxlen=256)  # the latest jobs decoded, cancelled ones included
        self.thread = threading.Thread(target=self._loop, name="persona-serve-batcher", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        with self.ready:
            self.pending.append(job)
            self.ready.notify()

    def close(self) -> None:
        with self.ready:
            self.stopping = True
            self.ready.notify()
        self.thread.join(30)

    def _take(self) -> list[Job]:
        with self.ready:
            while not self.pending and not self.stopping:
                self.ready.wait()
            if self.stopping:
                return []
        if self.gather_s and len(self.pending) < self.max_batch:
            time.sleep(self.gather_s)  # requests sent together arrive a little apart
        with self.ready:
            for job in [j for j in self.pending if j.cancel.is_set()]:
                self.pending.remove(job)  # left before it started: never decoded
            if not self.pending:
                return []
            key = batch_key(self.pending[0].settings)
            jobs = [j for j in self.pending if batch_key(j.settings) == key][: self.max_batch]
            for job in jobs:
                self.pending.remove(job)
            return jobs

    def _loop(self) -> None:
        while not self.stopping:
            jobs = self._take()
            if jobs:
                self._run(jobs)

    def _run(self, jobs: list[Job]) -> None:
        tokenizer = self.session.tokenizer
        rows = [_Row(job, tokenizer, self.eos, self.text_stops) for job in jobs]
        settings = replace(jobs[0].settings, max_new_tokens=max(j.settings.max_new_tokens for j in jobs))
        from transformers import StoppingCriteriaList

        self.batches.append(len(jobs))
        try:
            generate_together(self.session.model, tokenizer, [j.prompt_ids for j in jobs], settings,
                              eos_ids=sorted(self.eos),
                              extra={"streamer": _Steps(rows), "stopping_criteria": StoppingCriteriaList([_RowsDone(rows)])})
        except Exception as exc:  # noqa: BLE001 - every waiting request hears of it; the server lives on
            self.log(f"error: generation failed: {type(exc).__name__}: {exc}")
            for job in jobs:
                job.on_event("error", exc)
            return
        for row in rows:
            row.finish()
            self.finished.append(row.job)
