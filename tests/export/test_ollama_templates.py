"""Ollama TEMPLATEs reproduce the training prompt format byte for byte: the plain style and every table entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from personaforge.errors import PersonaForgeError
from personaforge.export.ollama import Sampling, for_gguf, modelfile_text, ollama_format, plain_template, render_go
from personaforge.prompting import Conversation, Exchange, PromptFormat, plain_prompt
from personaforge.run_personas import RunPersona
from tests.export.chat_templates import GEMMA, LLAMA3, MISTRAL, SMOLLM2, ZEPHYR
from tests.export.modelfile_parser import parse_modelfile
from tests.tiny import CHATML, make_tiny_model

HISTORY = (Exchange("Where did you grow up?", "On the island. The lamp turned all night."),
           Exchange("Was it \"lonely\"?", "Sometimes.\nMostly it was loud: gulls, wind, the foghorn."))
ADA = RunPersona("Ada Bell", "You are Ada Bell, a lighthouse keeper. Answer as Ada.", ("Ada",))
BEN = RunPersona("Ben Ortiz", "You are Ben Ortiz, a baker.", ("Ben",))

# Each family's special tokens, as its tokenizer names them.
FAMILIES = {
    "ChatML": (CHATML, "<|im_start|>", "<|im_end|>"),
    "SmolLM2 (ChatML with a default system prompt)": (SMOLLM2, "<|im_start|>", "<|im_end|>"),
    "Llama 3": (LLAMA3, "<|begin_of_text|>", "<|eot_id|>"),
    "Mistral": (MISTRAL, "<s>", "</s>"),
    "Gemma": (GEMMA, "<bos>", "<eos>"),
}
EXPECTED_ENTRY = {"ChatML": "ChatML", "SmolLM2 (ChatML with a default system prompt)": "ChatML", "Llama 3": "Llama 3",
                  "Mistral": "Mistral", "Gemma": "Gemma"}


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tok") / "model")


def family_tokenizer(folder: Path, bos: str, eos: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_special_tokens({"bos_token": bos, "eos_token": eos})
    return tokenizer


def conversation(persona: RunPersona, history=HISTORY) -> Conversation:
    return Conversation(persona.system_prompt, persona.name, tuple(history), "What do you miss most?")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_table_entry_renders_a_multi_turn_conversation_exactly_as_training_did(family, tokenizer_folder):
    template, bos, eos = FAMILIES[family]
    tokenizer = family_tokenizer(tokenizer_folder, bos, eos)
    fmt = PromptFormat("chat", template, eos)
    chosen = ollama_format(fmt, tokenizer, ADA, ["Ada Bell", "Ben Ortiz"])
    assert chosen.entry == EXPECTED_ENTRY[family]
    for turns in (HISTORY, HISTORY[:1], ()):
        expected, _ = fmt.render(conversation(ADA, turns), tokenizer)
        rendered = render_go(chosen.template, conversation(ADA, turns))
        # The runtime adds BOS as a token (the GGUF says so) where the Jinja template writes it as text.
        assert (bos + rendered if chosen.needs_bos else rendered) == expected
    assert eos in chosen.stops


def test_the_plain_template_renders_exactly_what_plain_prompt_renders(tokenizer_folder):
    tokenizer = family_tokenizer(tokenizer_folder, "<|im_start|>", "<|im_end|>")
    fmt = PromptFormat("plain", None, "<|im_end|>")
    for persona in (ADA, RunPersona('Zoë "Z" O\'Neil', ""), BEN):
        chosen = ollama_format(fmt, tokenizer, persona, [ADA.name, BEN.name])
        assert chosen.entry == "plain"
        for turns in (HISTORY, ()):
            convo = conversation(persona, turns)
            assert render_go(chosen.template, convo) == plain_prompt(persona.system_prompt, persona.name,
                                                                     convo.question, turns)
        assert chosen.stops == ("\n\nHuman:", "\n\nAda Bell:", "\n\nBen Ortiz:")
    # Spelled out once, so a renderer bug cannot hide behind a matching prompting bug.
    assert render_go(plain_template("Ada Bell"), conversation(ADA, HISTORY[:1])) == (
        "You are Ada Bell, a lighthouse keeper. Answer as Ada.\n\nHuman: Where did you grow up?\n\n"
        "Ada Bell: On the island. The lamp turned all night.\n\nHuman: What do you miss most?\n\nAda Bell:")


def test_a_chat_template_outside_the_table_is_refused_naming_the_supported_ones(tokenizer_folder):
    tokenizer = family_tokenizer(tokenizer_folder, "<s>", "</s>")
    with pytest.raises(PersonaForgeError) as error:
        ollama_format(PromptFormat("chat", ZEPHYR, "</s>"), tokenizer, ADA, ["Ada Bell"])
    assert "plain, ChatML, Llama 3, Mistral, Gemma" in str(error.value)


def test_bos_goes_into_the_template_only_when_the_gguf_does_not_add_it(tokenizer_folder):
    tokenizer = family_tokenizer(tokenizer_folder, "<|begin_of_text|>", "<|eot_id|>")
    chosen = ollama_format(PromptFormat("chat", LLAMA3, "<|eot_id|>"), tokenizer, ADA, ["Ada Bell"])
    assert for_gguf(chosen, True, "x.gguf", tokenizer, print).full_template == chosen.template
    written = for_gguf(chosen, False, "x.gguf", tokenizer, print).full_template
    assert written.startswith('{{ "<|begin_of_text|>" }}')
    expected, _ = PromptFormat("chat", LLAMA3, "<|eot_id|>").render(conversation(ADA), tokenizer)
    assert render_go(written, conversation(ADA)) == expected
    chatml = ollama_format(PromptFormat("chat", CHATML, "<|im_end|>"), tokenizer, ADA, ["Ada Bell"])
    with pytest.raises(PersonaForgeError, match="BOS"):
        for_gguf(chatml, True, "x.gguf", tokenizer, print)


def test_modelfile_has_from_template_system_stops_and_sampling_and_parses_back(tokenizer_folder):
    tokenizer = family_tokenizer(tokenizer_folder, "<|im_start|>", "<|im_end|>")
    fmt = ollama_format(PromptFormat("plain", None, "<|im_end|>"), tokenizer, ADA, ["Ada Bell", "Ben Ortiz"])
    persona = RunPersona("Ada Bell", 'You are "Ada".\nBrisk, salty.', ("Ada",))
    text = modelfile_text("m-q8_0.gguf", persona, fmt, Sampling(0.7, 0.9, 24, 1.15), "2026-run")
    lines = text.splitlines()
    assert "FROM ./m-q8_0.gguf" in lines
    assert any(line.startswith('TEMPLATE """') for line in lines)
    assert 'SYSTEM """You are "Ada".' in lines
    assert "PARAMETER temperature 0.7" in lines and "PARAMETER top_p 0.9" in lines
    assert "PARAMETER num_predict 24" in lines and "PARAMETER repeat_penalty 1.15" in lines
    # llama.cpp's penalty window counts prompt tokens, which eval and chat do not: the Modelfile says so
    assert "the prompt's included" in lines[lines.index("PARAMETER repeat_penalty 1.15") - 1]
    parsed = parse_modelfile(text)
    values = dict(parsed)
    assert values["from"] == "./m-q8_0.gguf"
    assert values["template"] == fmt.template
    assert values["system"] == persona.system_prompt
    assert [v for k, v in parsed if k == "stop"] == ["\n\nHuman:", "\n\nAda Bell:", "\n\nBen Ortiz:"]
    assert "eval.end_rule" not in text  # sampled answers end with the end token's own probability, as in eval

    # At temperature 0 llama.cpp ends wherever the end token is the argmax; eval's default rule does not
    greedy = modelfile_text("m.gguf", persona, fmt, Sampling(0, 1, 24, 1, "likelier_than_not"), "r").splitlines()
    assert "eval.end_rule" in greedy[greedy.index("PARAMETER temperature 0") - 1]
    assert "eval.end_rule" not in modelfile_text("m.gguf", persona, fmt, Sampling(0, 1, 24, 1, "argmax"), "r")


def test_a_system_prompt_that_a_modelfile_cannot_quote_is_a_clear_error(tokenizer_folder):
    tokenizer = family_tokenizer(tokenizer_folder, "<|im_start|>", "<|im_end|>")
    fmt = ollama_format(PromptFormat("plain", None, "<|im_end|>"), tokenizer, ADA, ["Ada Bell"])
    with pytest.raises(PersonaForgeError, match='system prompt contains """'):
        modelfile_text("m.gguf", RunPersona("Ada Bell", 'Say """hi"""'), fmt, Sampling(0, 1, 8, 1), "r")


@pytest.mark.parametrize("family,adds", [("ChatML", False), ("SmolLM2 (ChatML with a default system prompt)", False),
                                         ("Llama 3", True), ("Mistral", True), ("Gemma", True)])
def test_the_gguf_bos_flag_follows_the_templates_bos_token_not_a_marker_equal_to_it(family, adds, tokenizer_folder):
    from personaforge.export.formats import gguf_prompt_format

    template, bos, eos = FAMILIES[family]
    # SmolLM2's BOS text is <|im_start|>, which ChatML also writes as a turn marker: that is not a BOS.
    tokenizer = family_tokenizer(tokenizer_folder, bos, eos)
    fmt = PromptFormat("chat", template, eos)
    assert gguf_prompt_format(fmt, [ADA], tokenizer).add_bos is adds
    assert ollama_format(fmt, tokenizer, ADA, ["Ada Bell"]).needs_bos is adds
