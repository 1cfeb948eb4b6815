"""Talking to a finished run's personas: the one code path behind `persona chat`, `persona ask` and `persona serve`.

    chat_run = ChatRun.open(run)                         # every user error here, before any model is loaded
    persona = chat_run.persona("leila")                  # name or alias, case-insensitive
    session = chat_run.load(log)                         # adapter (or merged/) once, the run's prompt format
    turn = session.prepare(persona, question, history)   # training format; oldest exchanges dropped to fit
    reply = session.reply(turn, settings)                # streamed text; stop strings never shown
    for piece in reply: ...                              # then reply.text, reply.finish_reason, token counts
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from personaforge.errors import PersonaForgeError
from personaforge.generate import GenerationSettings, decoding_kwargs, split_stops
from personaforge.prompting import Conversation, Exchange, PromptFormat
from personaforge.run_personas import RunPersona, find_persona, run_personas
from personaforge.train import PROMPT_FORMAT_FILE
from personaforge.train.run import Run

Log = Callable[[str], None]


def disclosure(persona: RunPersona) -> str:
    """Said once, up front: the speaker is a model of a real person, not the person."""
    return (f"note: you are talking to an AI model imitating {persona.name}, trained on their interviews;"
            " it is not them.")


def default_settings(cfg) -> GenerationSettings:
    """The run's eval sampling settings: chat answers the way the run was evaluated."""
    return GenerationSettings.from_eval(cfg.eval, batch_size=1)


# ------------------------------------------------------------------------------------------ history fitting
class PromptTooLong(PersonaForgeError):
    """Even with no earlier exchanges, the question and the answer budget do not fit the context."""


def encode_prompt(fmt: PromptFormat, tokenizer, prompt: str) -> list[int]:
    # As training does: plain prompts get the tokenizer's own special tokens (BOS); chat templates write them.
    return tokenizer(prompt, add_special_tokens=fmt.style == "plain")["input_ids"]


def fit_conversation(fmt: PromptFormat, tokenizer, conversation: Conversation, budget: int,
                     max_new_tokens: int) -> tuple[Conversation, str, list[int]]:
    """Drops the oldest exchanges (as training truncation does) until prompt + max_new_tokens fits ``budget``."""
    while True:
        prompt = fmt.render(conversation, tokenizer)[0]
        ids = encode_prompt(fmt, tokenizer, prompt)
        if len(ids) + max_new_tokens <= budget:
            return conversation, prompt, ids
        if not conversation.history:
            raise PromptTooLong(f"the question is {len(ids)} tokens; with max_new_tokens {max_new_tokens} it exceeds"
                                f" the context of {budget} tokens; ask something shorter or lower max_new_tokens")
        conversation = conversation.without_oldest()


# ------------------------------------------------------------------------------------------- stop strings
class StopFilter:
    """Streams text while holding back anything that could still turn into a stop string.

    The concatenated output equals ``generate.cut_at_stop(full_text, stops)``: leading and trailing
    whitespace stripped, cut before the first stop string, and no stop string (or a piece of one) ever shown.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.pending = ""
        self.started = False
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            return self._emit(self.pending[:min(hits)].rstrip(), "")
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        # whitespace before the held part may end the answer too: it is shown only once more text follows
        cut = len(self.pending[:len(self.pending) - hold].rstrip())
        return self._emit(self.pending[:cut], self.pending[cut:])

    def finish(self) -> str:
        """The rest, once generation ended without a stop string."""
        return "" if self.stopped else self._emit(self.pending.rstrip(), "")

    def _emit(self, out: str, keep: str) -> str:
        if not self.started:
            out = out.lstrip()  # the plain style's completion starts with a space
        self.pending = keep
        self.started = self.started or bool(out)
        return out


# ----------------------------------------------------------------------------------------------- the reply
class _Cancelled:
    """A stopping criterion the consumer trips: a stop string seen, a client gone, Ctrl-C."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __call__(self, input_ids: torch.LongTensor, scores=None, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class Reply:
    """One streamed answer. Iterate for text pieces; afterwards ``text``, ``finish_reason`` ("stop" | "length"),
    ``prompt_tokens`` and ``completion_tokens`` are set. ``close()`` stops generation early."""

    def __init__(self, model, tokenizer, prompt_ids: list[int], settings: GenerationSettings, *,
                 stop_strings: Sequence[str] = (), eos_ids: Sequence[int] = ()) -> None:
        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.prompt_ids = list(prompt_ids)
        stop_ids, self.text_stops = split_stops(tokenizer, stop_strings)
        self.eos_ids = sorted(set(eos_ids) | stop_ids)
        self.filter = StopFilter(self.text_stops)
        self.cancel = threading.Event()
        self.text = ""
        self.finish_reason: str | None = None
        self.prompt_tokens = len(self.prompt_ids)
        self.completion_tokens = 0
        self._output: torch.Tensor | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._pieces = self._stream()

    def __iter__(self) -> Iterator[str]:
        return self._pieces

    def collect(self) -> str:
        for _ in self:
            pass
        return self.text

    def close(self) -> None:
        self.cancel.set()
        self._pieces.close()
        if self._thread is not None:
            self._thread.join()

    def _stream(self) -> Iterator[str]:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs()
        kwargs.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_Cancelled(self.cancel)]))

        def work() -> None:
            try:
                if self.settings.temperature > 0:
                    torch.manual_seed(self.settings.seed)  # seeded: the same question gets the same answer
                with torch.no_grad():
                    self._output = self.model.generate(**kwargs)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer; end the stream so it never waits
                self._error = exc
                streamer.end()

        self._thread = threading.Thread(target=work, name="persona-generate", daemon=True)
        self._thread.start()
        try:
            for chunk in streamer:
                piece = self.filter.feed(chunk)
                if piece:
                    self.text += piece
                    yield piece
                if self.filter.stopped:
                    break
            piece = self.filter.finish()
            if piece:
                self.text += piece
                yield piece
        finally:
            self.cancel.set()
            self._thread.join()
        if self._error is not None:
            raise self._error
        self._finish()

    def _generate_kwargs(self) -> dict[str, Any]:
        s = self.settings
        device = next(self.model.parameters()).device
        ids = torch.tensor([self.prompt_ids], dtype=torch.long, device=device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (self.eos_ids or [0])[0]
        kwargs: dict[str, Any] = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                  "max_new_tokens": s.max_new_tokens, "eos_token_id": self.eos_ids or None,
                                  "pad_token_id": pad, "use_cache": True}
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        kwargs.update(decoding_kwargs(s, len(self.prompt_ids), self.eos_ids))
        if self.text_stops:
            # generate stops on the token that completes a stop string; the filter cuts the text before it
            kwargs.update(stop_strings=list(self.text_stops), tokenizer=self.tokenizer)
        return kwargs

    def _finish(self) -> None:
        new = self._output[0, len(self.prompt_ids):].tolist() if self._output is not None else []
        self.completion_tokens = len(new)
        ended = self.filter.stopped or (bool(new) and new[-1] in self.eos_ids)
        self.finish_reason = "length" if not ended and len(new) >= self.settings.max_new_tokens else "stop"


# ------------------------------------------------------------------------------------------- run + model
@dataclass(frozen=True)
class Turn:
    """A question ready to generate: the conversation as kept after fitting, its prompt text and ids."""

    persona: RunPersona
    conversation: Conversation
    prompt: str
    prompt_ids: list[int]
    dropped: int  # earlier exchanges left out to fit the context


@dataclass
class ChatRun:
    """What chat needs from a run before a model is loaded; every user error is raised here."""

    run: Run
    cfg: Any
    fmt: PromptFormat
    personas: list[RunPersona]

    @classmethod
    def open(cls, run: Run) -> ChatRun:
        run.require_finished("used for chat")
        data = run.read_json(PROMPT_FORMAT_FILE)
        if not data:
            raise PersonaForgeError(f"run {run.name} has no {PROMPT_FORMAT_FILE}; train it again with this version")
        personas = run_personas(run)
        if not personas:
            raise PersonaForgeError(f"run {run.name} records no personas (personas.json, data.json); train it again")
        return cls(run, run.train_config(), PromptFormat.from_json(data), personas)

    def persona(self, name: str) -> RunPersona:
        return find_persona(self.personas, name)

    def load(self, log: Log) -> ChatModel:
        from personaforge.evaluate.runner import load_for_eval

        loaded = load_for_eval(self.run, self.cfg, baseline=False, log=log)
        loaded.model.eval()
        return ChatModel(self, loaded.model, loaded.tokenizer)


class ChatModel:
    """A run's model loaded once, with its prompt format, personas, context budget and stop rules."""

    def __init__(self, chat_run: ChatRun, model, tokenizer) -> None:
        self.chat_run = chat_run
        self.model, self.tokenizer = model, tokenizer
        self.fmt = chat_run.fmt
        self.personas = chat_run.personas
        self.settings = default_settings(chat_run.cfg)
        self.budget = context_budget(chat_run.cfg.data.max_length, model)
        self.stop_strings = self.fmt.stop_strings([p.name for p in self.personas])
        self.eos_ids = end_of_turn_ids(self.fmt, tokenizer, model)

    def persona(self, name: str) -> RunPersona:
        return find_persona(self.personas, name)

    def prepare(self, persona: RunPersona, question: str, history: Sequence[Exchange] = (), *,
                system: str | None = None, max_new_tokens: int | None = None) -> Turn:
        if not question.strip():
            raise PersonaForgeError("the question is empty")
        conversation = Conversation(persona.system_prompt if system is None else system, persona.name,
                                    tuple(history), question)
        budget_new = max_new_tokens if max_new_tokens is not None else self.settings.max_new_tokens
        kept, prompt, ids = fit_conversation(self.fmt, self.tokenizer, conversation, self.budget, budget_new)
        return Turn(persona, kept, prompt, ids, len(conversation.history) - len(kept.history))

    def reply(self, turn: Turn, settings: GenerationSettings | None = None, extra_stops: Sequence[str] = ()) -> Reply:
        return Reply(self.model, self.tokenizer, turn.prompt_ids, settings or self.settings,
                     stop_strings=[*self.stop_strings, *extra_stops], eos_ids=self.eos_ids)

    def with_settings(self, **changes) -> GenerationSettings:
        return replace(self.settings, **{k: v for k, v in changes.items() if v is not None})


def context_budget(max_length: int, model) -> int:
    """Tokens a prompt plus its answer may use: data.max_length, or the model's own context when larger."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    context = getattr(config, "max_position_embeddings", None)
    return max(max_length, context) if isinstance(context, int) else max_length


def end_of_turn_ids(fmt: PromptFormat, tokenizer, model) -> list[int]:
    """EOS, the model's generation EOS ids, the format's EOS, and the chat template's end-of-turn token."""
    ids: set[int] = set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([configured] if isinstance(configured, int) else configured or [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    special = set(tokenizer.all_special_tokens)
    markers = [fmt.eos_token] if fmt.eos_token else []
    if fmt.style == "chat":
        # The template's own turn end (<|im_end|>, <|eot_id|>, <end_of_turn>, ...): what follows a rendered answer.
        _, completion = fmt.render(Conversation("s", "n", (), "q", "a"), tokenizer)
        if completion and completion.startswith("a"):
            markers.append(completion[1:].strip())
    for marker in markers:
        if marker in special:
            token = tokenizer.convert_tokens_to_ids(marker)
            if isinstance(token, int) and token != tokenizer.unk_token_id:
                ids.add(token)
    return sorted(ids)
