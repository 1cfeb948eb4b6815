"""The run's prompt format as an exported model carries it: the GGUF's Jinja chat template and BOS handling.

A run trained in the plain style (``system\\n\\nHuman: q\\n\\nName:``) has no chat template of its own; the GGUF
gets a Jinja template that renders exactly what ``prompting.plain_prompt`` renders, so llama.cpp (and anything
that reads ``tokenizer.chat_template``) reproduces the training text. Chat-style runs carry the template they
trained with, which may differ from the one the base model's tokenizer ships.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from personaforge.prompting import HUMAN, Conversation, Exchange, PromptFormat
from personaforge.run_personas import RunPersona

# Conversations that exercise every part of a format: system, history turns, quotes, newlines, non-ASCII.
PROBE_HISTORY = (
    Exchange("Where did you grow up?", "On an island, with \"the lamp\" turning above us."),
    Exchange("And later?", "Later I moved inland.\nIt was quieter — too quiet."),
)
PROBE_QUESTION = "What do you miss most?"


def probe_conversations(persona: RunPersona) -> list[Conversation]:
    """A persona's probe conversations with 0, 1 and 2 earlier exchanges (no answer: generation prompts)."""
    return [Conversation(persona.system_prompt, persona.name, PROBE_HISTORY[:n], PROBE_QUESTION) for n in range(3)]


def _jinja_string(text: str) -> str:
    # A Jinja string literal: JSON escaping is a subset Jinja's lexer decodes the same way.
    return json.dumps(text, ensure_ascii=False)


def plain_jinja_template(name: str, bos_token: str | None) -> str:
    """A chat template that renders the plain style for persona ``name`` exactly as prompting.plain_prompt does."""
    bos = "{{- bos_token -}}" if bos_token else ""
    speaker = _jinja_string(name)
    human = _jinja_string(HUMAN)
    return (
        "{#- personaforge plain prompt style: system, then 'Human: q' / 'Name: a' turns, joined by blank lines -#}"
        f"{{%- set name = {speaker} -%}}"
        "{%- set ns = namespace(parts=[]) -%}"
        "{%- for message in messages -%}"
        "{%- set content = message['content'] | trim -%}"
        "{%- if message['role'] == 'system' -%}{%- if content -%}{%- set ns.parts = ns.parts + [content] -%}{%- endif -%}"
        f"{{%- elif message['role'] == 'user' -%}}{{%- set ns.parts = ns.parts + [{human} + ': ' + content] -%}}"
        "{%- elif message['role'] == 'assistant' -%}{%- set ns.parts = ns.parts + [name + ': ' + content] -%}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{%- set ns.parts = ns.parts + [name + ':'] -%}{%- endif -%}"
        f"{bos}{{{{- ns.parts | join('\\n\\n') -}}}}"
    )


def template_name(persona: RunPersona) -> str:
    # GGUF keeps named templates as tokenizer.chat_template.<name>, letters, digits and '_' only.
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in persona.slug)


@dataclass(frozen=True)
class GgufPromptFormat:
    """What goes into the GGUF: the chat template(s) and whether the runtime must add a BOS token."""

    chat_template: str | list[dict[str, str]]
    add_bos: bool

    @property
    def default_template(self) -> str:
        if isinstance(self.chat_template, str):
            return self.chat_template
        return next(t["template"] for t in self.chat_template if t["name"] == "default")


def tokenizer_adds_bos(tokenizer) -> bool:
    """Does the tokenizer put BOS in front of plain text (what plain-style training used)?"""
    bos = tokenizer.bos_token_id
    if bos is None:
        return False
    with_special = tokenizer("Hello", add_special_tokens=True)["input_ids"]
    without = tokenizer("Hello", add_special_tokens=False)["input_ids"]
    return with_special[:1] == [bos] and without[:1] != [bos]


def gguf_prompt_format(fmt: PromptFormat, personas: list[RunPersona], tokenizer) -> GgufPromptFormat:
    """The template(s) and BOS flag that make llama.cpp reproduce the training token ids."""
    if fmt.style == "plain":
        add_bos = tokenizer_adds_bos(tokenizer)
        bos = tokenizer.bos_token if add_bos else None
        templates = [plain_jinja_template(p.name, bos) for p in personas]
        if len(personas) == 1:
            return GgufPromptFormat(templates[0], add_bos)
        # Several personas: the default speaks as the first; each also has a named template.
        named = [{"name": "default", "template": templates[0]}]
        named += [{"name": template_name(p), "template": t} for p, t in zip(personas, templates)]
        return GgufPromptFormat(named, add_bos)
    # Chat style: templates write BOS as text (training tokenised them without special tokens); the runtime
    # must add one exactly when the template starts with its bos_token variable. Rendering with a stand-in
    # tells that apart from a turn marker that merely equals the BOS text (SmolLM2's BOS is <|im_start|>).
    probe = probe_conversations(personas[0])[0] if personas else Conversation("", "", (), PROBE_QUESTION)
    return GgufPromptFormat(fmt.chat_template, template_writes_bos(fmt.chat_template, probe, tokenizer))


BOS_STAND_IN = "\u0002personaforge-bos\u0003"


def template_writes_bos(template: str, conversation: Conversation, tokenizer) -> bool:
    from transformers.utils.chat_template_utils import render_jinja_template

    from personaforge.prompting import chat_messages

    messages = chat_messages(conversation.system, conversation.question, conversation.history)
    rendered, _ = render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=True,
                                        **{**tokenizer.special_tokens_map, "bos_token": BOS_STAND_IN})
    return rendered[0].startswith(BOS_STAND_IN)
