"""Chat and ask: history fitting, stop strings in the stream, the REPL, and the real CLI on a tiny trained run."""

from __future__ import annotations

import io
import itertools
import json
import shutil
import time
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from personaforge.chat import ChatModel, ChatRun, PromptTooLong, Reply, StopFilter, fit_conversation
from personaforge.generate import GenerationSettings, cut_at_stop, generate
from personaforge.prompting import DEFAULT_CHAT_TEMPLATE, Conversation, Exchange, PromptFormat
from personaforge.run_personas import RunPersona
from tests.chat.conftest import ONE_THREAD
from tests.conftest import assert_user_error, run_persona

PLAIN_STOPS = PromptFormat("plain").stop_strings(["Ada Bell", "Ben Ortiz"])


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


# ------------------------------------------------------------------------------------------ history fitting
HISTORY = (Exchange("What happened first?", "The lamp turns every ten seconds."),
           Exchange("And then?", "Storms arrive sideways here, salt on the windows."),
           Exchange("Who came?", "Ships used to signal back with three short flashes."))


@pytest.mark.parametrize("fmt", [PromptFormat("plain", None, "<|im_end|>"),
                                 PromptFormat("chat", DEFAULT_CHAT_TEMPLATE, "<|im_end|>")], ids=["plain", "chat"])
def test_fitting_drops_the_oldest_exchange_first_and_renders_what_it_keeps(tokenizer, fmt):
    conversation = Conversation("You are Ada Bell, a lighthouse keeper.", "Ada Bell", HISTORY, "What now?")
    special = fmt.style == "plain"
    lengths = [len(tokenizer(fmt.render(Conversation(conversation.system, "Ada Bell", HISTORY[k:], "What now?"),
                                        tokenizer)[0], add_special_tokens=special)["input_ids"]) for k in range(4)]
    assert lengths == sorted(lengths, reverse=True) and len(set(lengths)) == 4
    new_tokens = 5
    # Room for everything: nothing dropped.
    kept, prompt, ids = fit_conversation(fmt, tokenizer, conversation, lengths[0] + new_tokens, new_tokens)
    assert kept == conversation
    # One token short of everything: exactly the oldest exchange goes.
    kept, prompt, ids = fit_conversation(fmt, tokenizer, conversation, lengths[0] + new_tokens - 1, new_tokens)
    assert kept.history == HISTORY[1:]
    assert prompt == fmt.render(kept, tokenizer)[0]
    assert ids == tokenizer(prompt, add_special_tokens=special)["input_ids"] and len(ids) == lengths[1]
    # Room for the question alone: every exchange goes, oldest first.
    kept, prompt, _ = fit_conversation(fmt, tokenizer, conversation, lengths[3] + new_tokens, new_tokens)
    assert kept.history == () and prompt == fmt.render(kept, tokenizer)[0]
    with pytest.raises(PromptTooLong, match="exceeds the context"):
        fit_conversation(fmt, tokenizer, conversation, lengths[3] + new_tokens - 1, new_tokens)


# ------------------------------------------------------------------------------------------- stop strings
TEXT = st.lists(st.sampled_from(["a", "b", " ", "\n", "\n\n", "Human:", "Hu", "Ada", " Bell:", "Ben", " Ortiz:",
                                 ":", "H"]), max_size=16).map("".join)


@hsettings(max_examples=400, deadline=None)
@given(text=TEXT, cuts=st.lists(st.integers(0, 40), max_size=6))
def test_stop_filter_streams_exactly_the_cut_answer_and_never_a_stop_string(text, cuts):
    bounds = sorted({c for c in cuts if c <= len(text)} | {0, len(text)})
    chunks = [text[a:b] for a, b in itertools.pairwise(bounds)]
    stop_filter = StopFilter(PLAIN_STOPS)
    pieces = [stop_filter.feed(chunk) for chunk in chunks] + [stop_filter.finish()]
    shown = "".join(pieces)
    assert shown == cut_at_stop(text, PLAIN_STOPS)
    assert not any(stop in shown for stop in PLAIN_STOPS)


class ScriptedModel(torch.nn.Module):
    """Stands in for a causal LM: 'generates' a fixed token sequence through the streamer, token by token,
    honouring stopping criteria the way generate() does."""

    def __init__(self, script: list[int], eos: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.script, self.eos, self.produced = script, eos, 0

    def generate(self, input_ids, streamer, stopping_criteria, max_new_tokens, eos_token_id, **kwargs):
        streamer.put(input_ids.cpu())
        sequence = input_ids
        for token in self.script[:max_new_tokens]:
            sequence = torch.cat([sequence, torch.tensor([[token]])], dim=1)
            self.produced += 1
            streamer.put(torch.tensor([token]))
            # A real model takes a while per token; without a pause this loop can finish before the consumer
            # thread runs at all on a busy machine. Wait (at most a second) until it has taken the text so far.
            deadline = time.monotonic() + 1.0
            while not streamer.text_queue.empty() and time.monotonic() < deadline:
                time.sleep(0.001)
            if token in (eos_token_id or []) or any(bool(c(sequence, None)[0]) for c in stopping_criteria):
                break
        streamer.end()
        return sequence


def test_streamed_reply_hides_stop_strings_and_stops_generating(tokenizer):
    answer = " The lamp turns every ten seconds"
    script = tokenizer(answer + "\n\nHuman: and the storms?\n\nAda Bell: salt on the windows and more text",
                       add_special_tokens=False)["input_ids"]
    model = ScriptedModel(script, tokenizer.eos_token_id)
    reply = Reply(model, tokenizer, [1, 2, 3], GenerationSettings(max_new_tokens=200), stop_strings=PLAIN_STOPS,
                  eos_ids=[tokenizer.eos_token_id])
    pieces = list(reply)
    assert "".join(pieces) == reply.text == answer.strip()
    assert not any("Human" in piece or "\n\n" in piece for piece in pieces)
    assert reply.finish_reason == "stop"
    assert model.produced < len(script)  # the consumer's stop reached generate: it did not run to the end


def test_reply_reports_length_when_the_budget_runs_out(tokenizer):
    script = tokenizer(" one two three four five six seven", add_special_tokens=False)["input_ids"]
    reply = Reply(ScriptedModel(script, tokenizer.eos_token_id), tokenizer, [1, 2], GenerationSettings(max_new_tokens=3),
                  stop_strings=PLAIN_STOPS, eos_ids=[tokenizer.eos_token_id])
    assert reply.collect() == tokenizer.decode(script[:3]).strip()
    assert (reply.finish_reason, reply.prompt_tokens, reply.completion_tokens) == ("length", 2, 3)


def test_streamed_greedy_answer_equals_batch_generation_in_both_styles(tiny_model, tokenizer):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    personas = [RunPersona("Ada Bell", "You are Ada Bell, a lighthouse keeper.", ("Ada",)),
                RunPersona("Ben Ortiz", "You are Ben Ortiz, a baker.", ("Ben",))]
    cfg = SimpleNamespace(eval=SimpleNamespace(max_new_tokens=12, temperature=0.0, top_p=1.0, seed=0),
                          data=SimpleNamespace(max_length=256))
    for fmt in (PromptFormat("plain", None, "<|im_end|>"), PromptFormat("chat", DEFAULT_CHAT_TEMPLATE, "<|im_end|>")):
        session = ChatModel(ChatRun(None, cfg, fmt, personas), model, tokenizer)
        turn = session.prepare(personas[0], "What about storms?", [Exchange("Hello?", "The lamp turns.")])
        streamed = session.reply(turn).collect()
        stops = session.stop_strings if fmt.style == "plain" else ["<|im_end|>"]
        batch = generate(model, tokenizer, [turn.prompt], GenerationSettings(max_new_tokens=12), stop_strings=stops,
                         add_special_tokens=fmt.style == "plain")
        assert streamed == batch[0], fmt.style
        assert streamed  # the random model says something in 12 tokens; an empty answer would prove nothing


# --------------------------------------------------------------------------------------------- the REPL
def test_repl_keeps_history_in_the_training_format_and_resets_it(session, monkeypatch, capsys):
    from personaforge.cli.chat import Repl

    prepared = []
    original = session.prepare
    monkeypatch.setattr(session, "prepare", lambda *a, **k: prepared.append(original(*a, **k)) or prepared[-1])
    monkeypatch.setattr("sys.stdin", io.StringIO("Tell me about storms.\nAnd the ships?\n/reset\nHello again.\n"))
    repl = Repl(session, session.persona("ada"), session.settings)
    repl.run()  # ends at EOF, cleanly
    first, second, third = prepared
    assert first.conversation.history == ()
    kept = second.conversation
    assert len(kept.history) == 1 and kept.history[0].question == "Tell me about storms."
    assert kept.system == session.persona("ada").system_prompt and kept.name == "Ada Bell"
    assert second.prompt == session.fmt.render(kept, session.tokenizer)[0]
    assert third.conversation.history == ()  # /reset
    assert len(repl.history) == 1 and repl.history[0].question == "Hello again."
    out = capsys.readouterr().out
    assert out.count("Ada Bell> ") == 3 and "(history cleared)" in out
    assert f"Ada Bell> {kept.history[0].answer}\n" in out  # what was shown is what the history keeps


# ---------------------------------------------------------------------------------------------- the CLI
def test_ask_prints_only_the_answer(chat_run, session):
    result = run_persona("ask", str(chat_run), "--persona", "ADA", "What about storms?", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    expected = session.reply(session.prepare(session.persona("Ada Bell"), "What about storms?")).collect()
    assert result.stdout == expected + "\n"
    assert "AI model imitating Ada Bell" in result.stderr and "it is not them" in result.stderr


def test_ask_refuses_an_unknown_persona_and_lists_the_choices(chat_run):
    assert_user_error(run_persona("ask", str(chat_run), "--persona", "Zed", "hi"), "Zed", "Ada Bell, Ben Ortiz")
    assert_user_error(run_persona("ask", str(chat_run), "hi"), "--persona", "Ada Bell, Ben Ortiz")
    assert_user_error(run_persona("ask", str(chat_run), "-p", "Ada", "--repetition-penalty", "0.5", "hi"),
                      "--repetition-penalty")
    assert_user_error(run_persona("ask", str(chat_run), "-p", "Ada", "--end-rule", "first", "hi"),
                      "--end-rule first", "likelier_than_not, argmax")


def test_chat_refuses_a_run_that_did_not_finish(chat_run, tmp_path):
    failed = tmp_path / chat_run.name
    shutil.copytree(chat_run, failed)
    status = json.loads((failed / "status.json").read_text())
    (failed / "status.json").write_text(json.dumps({**status, "status": "failed"}))
    assert_user_error(run_persona("chat", str(failed), "--persona", "Ada"), "failed", "finished")


def test_chat_with_scripted_stdin(chat_run):
    script = "What about storms?\n/persona ben\n/persona Zed\nTell me about bread.\n/reset\nAnd mornings?\n/help\n/exit\nnever read\n"
    result = run_persona_input("chat", str(chat_run), "--persona", "Ada", "--max-new-tokens", "4", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("Ada Bell> ") == 1 and out.count("Ben Ortiz> ") == 2
    assert out.index("Ada Bell> ") < out.index("(now talking to Ben Ortiz; history cleared)") < out.index("Ben Ortiz> ")
    assert "error: /persona Zed: not a persona of this run" in out and "(history cleared)" in out
    assert "forget the conversation so far" in out.split("Ben Ortiz> ")[-1]  # /help, after the last answer
    assert "you> What about storms?\n" in out  # piped questions are echoed: the transcript reads like the session
    assert out.count("you> ") == 8  # /exit left before the last line
    assert result.stderr.count("AI model imitating Ada Bell") == 1
    assert result.stderr.count("AI model imitating Ben Ortiz") == 1
    assert "Traceback" not in result.stderr


def run_persona_input(*args: str, stdin: str):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "200", **ONE_THREAD}
    return subprocess.run([sys.executable, "-m", "personaforge", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)
