"""`persona export ollama RUN`: one Modelfile per persona that reproduces the training prompt format exactly.

Ollama renders prompts with a Go template, not the model's Jinja chat template, so the TEMPLATE comes from a
fixed table: the plain style, ChatML, Llama 3, Mistral and Gemma. Which entry a chat-style run needs is found
by rendering probe conversations both ways — the run's Jinja template (through the tokenizer, as training
did) and each entry's Go template (gotemplate.py, Go's rules) — and taking the entry that matches byte for
byte. A template outside the table is refused rather than approximated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.export import gotemplate
from personaforge.export.formats import probe_conversations
from personaforge.fileio import atomic_write_text, display_path
from personaforge.prompting import HUMAN, Conversation, PromptFormat, chat_messages, plain_stop_strings
from personaforge.run_personas import RunPersona
from personaforge.train.run import Run

Log = Callable[[str], None]

# Each entry: Ollama's .Messages form. System text comes from .System (Ollama fills it from SYSTEM or from the
# request's system message); the loop skips system messages. `$last` marks the final message, after which a
# generation prompt opens the assistant turn.
CHATML = """\
{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}<|im_end|>
{{ end }}
{{- if and $last (ne .Role "assistant") }}<|im_start|>assistant
{{ end }}
{{- end }}"""

LLAMA3 = """\
{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|start_header_id|>user<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- else if eq .Role "assistant" }}<|start_header_id|>assistant<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}
{{- if and $last (ne .Role "assistant") }}<|start_header_id|>assistant<|end_header_id|>

{{ end }}
{{- end }}"""

# Mistral v0.3 style: the system text opens the last user message.
MISTRAL = """\
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}[INST] {{ if and $.System $last }}{{ $.System }}

{{ end }}{{ .Content }}[/INST]
{{- else if eq .Role "assistant" }} {{ .Content }}</s>
{{- end }}
{{- end }}"""

# Gemma: no system role; the system text opens the first user message.
GEMMA = """\
{{- $first := true }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{ if and $first $.System }}{{ $.System }}

{{ end }}{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- if ne .Role "system" }}{{ $first = false }}{{ end }}
{{- if and $last (ne .Role "assistant") }}<start_of_turn>model
{{ end }}
{{- end }}"""


def plain_template(name: str) -> str:
    """The plain style for one persona: system, then 'Human: q' / 'Name: a' turns separated by blank lines."""
    if "{{" in name or "}}" in name:
        raise PersonaForgeError(f"persona name {name!r} contains '{{{{' or '}}}}', which an Ollama TEMPLATE cannot hold")
    return f"""\
{{{{- if .System }}}}{{{{ .System }}}}

{{{{ end }}}}
{{{{- range $i, $_ := .Messages }}}}
{{{{- $last := eq (len (slice $.Messages $i)) 1 }}}}
{{{{- if eq .Role "user" }}}}{HUMAN}: {{{{ .Content }}}}

{{{{ if $last }}}}{name}:{{{{ end }}}}
{{{{- else if eq .Role "assistant" }}}}{name}: {{{{ .Content }}}}
{{{{- if not $last }}}}

{{{{ end }}}}
{{{{- end }}}}
{{{{- end }}}}"""


@dataclass(frozen=True)
class TableEntry:
    name: str
    template: str
    stops: tuple[str, ...]


CHAT_TABLE = (
    TableEntry("ChatML", CHATML, ("<|im_start|>", "<|im_end|>")),
    TableEntry("Llama 3", LLAMA3, ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
    TableEntry("Mistral", MISTRAL, ("[INST]", "[/INST]", "</s>")),
    TableEntry("Gemma", GEMMA, ("<start_of_turn>", "<end_of_turn>")),
)
SUPPORTED = "plain, " + ", ".join(e.name for e in CHAT_TABLE)


def ollama_values(conversation: Conversation, answer: str | None = None) -> dict:
    """What Ollama hands the TEMPLATE for a chat request with this conversation (SYSTEM → a system message)."""
    messages = chat_messages(conversation.system, conversation.question, conversation.history, answer)
    return {"System": conversation.system.strip(),
            "Messages": [{"Role": m["role"], "Content": m["content"]} for m in messages]}


def render_go(template: str, conversation: Conversation, answer: str | None = None) -> str:
    return gotemplate.render(template, ollama_values(conversation, answer))


@dataclass(frozen=True)
class OllamaFormat:
    """The TEMPLATE and stops for one persona, and whether training put a BOS token in front of the prompt."""

    entry: str
    template: str
    stops: tuple[str, ...]
    needs_bos: bool
    bos_text: str = ""  # written at the start of the TEMPLATE only when the GGUF does not make llama.cpp add BOS

    @property
    def full_template(self) -> str:
        return (gotemplate_prefix(self.bos_text) + self.template) if self.bos_text else self.template


def _matches(template: str, fmt: PromptFormat, tokenizer, persona: RunPersona, prefix: str) -> bool:
    """Does ``prefix`` + the Go rendering reproduce the training prompt of every probe conversation?"""
    for conversation in probe_conversations(persona):
        try:
            expected, _ = fmt.render(conversation, tokenizer)
            got = render_go(template, conversation)
        except Exception:  # noqa: BLE001 - a template that cannot render the probe does not match
            return False
        if expected != prefix + got:
            return False
    return True


def ollama_format(fmt: PromptFormat, tokenizer, persona: RunPersona, all_names: list[str]) -> OllamaFormat:
    """The table entry that reproduces the run's prompt format for this persona (PersonaForgeError if none)."""
    from personaforge.export.formats import template_writes_bos, tokenizer_adds_bos

    if fmt.style == "plain":
        template = plain_template(persona.name)
        if not _matches(template, fmt, tokenizer, persona, ""):  # pragma: no cover - built to match
            raise PersonaForgeError(f"the plain Ollama template does not reproduce persona {persona.name}'s prompts")
        # Plain prompts were tokenised with the tokenizer's own special tokens (BOS), not written as text.
        return OllamaFormat("plain", template, tuple(plain_stop_strings(all_names)), tokenizer_adds_bos(tokenizer))
    # Go templates never write BOS: Ollama adds it as a token when the GGUF says so (see for_gguf).
    writes_bos = template_writes_bos(fmt.chat_template, probe_conversations(persona)[0], tokenizer)
    prefix = tokenizer.bos_token if writes_bos else ""
    for entry in CHAT_TABLE:
        if _matches(entry.template, fmt, tokenizer, persona, prefix):
            eos = tokenizer.eos_token
            stops = entry.stops + ((eos,) if eos and eos not in entry.stops else ())
            return OllamaFormat(entry.name, entry.template, stops, writes_bos)
    raise PersonaForgeError(f"this run's chat template is not one Ollama export supports ({SUPPORTED}); retrain with"
                            " data.prompt_style: plain, or use the GGUF with llama.cpp, which reads the template itself")


def for_gguf(chosen: OllamaFormat, adds_bos: bool | None, gguf_name: str, tokenizer, log: Log) -> OllamaFormat:
    """Fit the BOS handling to the GGUF: Ollama tokenises the rendered TEMPLATE and adds BOS when the file says so."""
    if not chosen.needs_bos:
        if adds_bos:
            raise PersonaForgeError(f"{gguf_name} makes llama.cpp add a BOS token the training format does not have;"
                                    " export the GGUF again with this version of personaforge")
        return chosen
    if adds_bos is None:
        log(f"note: {gguf_name} does not say whether llama.cpp adds BOS; the TEMPLATE assumes it does")
    if adds_bos is False:
        return replace(chosen, bos_text=tokenizer.bos_token)
    return chosen


# -------------------------------------------------------------------------------------------------- Modelfile
def _quote(value: str, what: str) -> str:
    """A Modelfile string: triple quotes when it spans lines or holds a double quote."""
    if '"""' in value:
        raise PersonaForgeError(f'{what} contains """, which a Modelfile cannot quote; remove it from the persona card')
    if "\n" in value or '"' in value or value != value.strip():
        if value.endswith('"'):
            raise PersonaForgeError(f'{what} ends with ", which a Modelfile cannot quote; remove it from the persona card')
        return f'"""{value}"""'
    return f'"{value}"'


def _number(value: float) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    num_predict: int
    repeat_penalty: float
    end_rule: str = "argmax"

    @classmethod
    def from_run(cls, run: Run) -> Sampling:
        section = run.train_config().eval
        return cls(section.temperature, section.top_p, section.max_new_tokens,
                   float(getattr(section, "repetition_penalty", 1.0)), str(getattr(section, "end_rule", "argmax")))


def modelfile_text(gguf_name: str, persona: RunPersona, fmt: OllamaFormat, sampling: Sampling, run_name: str) -> str:
    lines = [
        f"# {persona.name} — an AI persona of a real person, fine-tuned by personaforge (run {run_name}).",
        f"# Prompt format: {fmt.entry}, checked byte for byte against the training format.",
        f"# ollama create {persona.slug} -f Modelfile.{persona.slug} && ollama run {persona.slug}",
        f"FROM ./{gguf_name}",
        f"TEMPLATE {_quote(fmt.full_template, 'the TEMPLATE')}",
    ]
    if persona.system_prompt.strip():
        lines.append(f"SYSTEM {_quote(persona.system_prompt.strip(), f'persona {persona.name} system prompt')}")
    lines += [f"PARAMETER stop {_quote(stop, 'a stop string')}" for stop in fmt.stops]
    if sampling.temperature == 0 and sampling.end_rule == "likelier_than_not":
        lines.append("# temperature 0: llama.cpp ends an answer wherever the end token is the likeliest one;"
                     " personaforge's eval and chat end only where ending is likelier than not (eval.end_rule),"
                     " so answers here can be shorter")
    lines += [f"PARAMETER temperature {_number(sampling.temperature)}", f"PARAMETER top_p {_number(sampling.top_p)}",
              f"PARAMETER num_predict {sampling.num_predict}",
              f"PARAMETER repeat_penalty {_number(sampling.repeat_penalty)}"]
    if sampling.repeat_penalty != 1:
        lines.insert(len(lines) - 1, "# repeat_penalty: llama.cpp counts the last 64 tokens, the prompt's included;"
                                     " personaforge's eval and chat count only the answer's")
    return "\n".join(lines) + "\n"


def gotemplate_prefix(bos_text: str) -> str:
    # Only when the GGUF does not add BOS itself: the token's text, which llama.cpp parses as the special token.
    return f"{{{{ {gotemplate_string(bos_text)} }}}}"


def gotemplate_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


# ------------------------------------------------------------------------------------------------------ export
@dataclass
class OllamaResult:
    gguf: Path
    modelfiles: list[Path]
    entry: str
    exported_now: bool
    token_check: dict | None


def newest_gguf(export_dir: Path) -> Path | None:
    files = [p for p in export_dir.glob("*.gguf") if p.is_file()] if export_dir.is_dir() else []
    return max(files, key=lambda p: p.stat().st_mtime_ns) if files else None


def _gguf_adds_bos(path: Path) -> bool | None:
    from personaforge.export.gguf import read_metadata

    value = read_metadata(path, ("tokenizer.ggml.add_bos_token",)).get("tokenizer.ggml.add_bos_token")
    return None if value is None else bool(value)


def export_ollama(run: Run, log: Log = print) -> OllamaResult:
    """Modelfile.<persona-slug> for each persona, next to the newest GGUF (a q8_0 export is made if none)."""
    from personaforge.export.gguf import EXPORT_DIR, export_gguf, run_prompt_format, run_tokenizer
    from personaforge.run_personas import run_personas

    run.require_finished("exported")
    fmt = run_prompt_format(run)
    personas = run_personas(run)
    if not personas:
        raise PersonaForgeError(f"run {run.name} records no personas; train it again")
    tokenizer = run_tokenizer(run, log)
    names = [p.name for p in personas]
    formats = {p.slug: ollama_format(fmt, tokenizer, p, names) for p in personas}  # refuse before any file
    sampling = Sampling.from_run(run)
    export_dir = run.path / EXPORT_DIR
    gguf = newest_gguf(export_dir)
    exported_now = gguf is None
    if gguf is None:
        log("no GGUF in the run yet: exporting q8_0 first")
        gguf = export_gguf(run, "q8_0", log).path
    adds_bos = _gguf_adds_bos(gguf)
    finals = {slug: for_gguf(chosen, adds_bos, gguf.name, tokenizer, log) for slug, chosen in formats.items()}
    token_check = check_modelfile_tokens(gguf, fmt, tokenizer, personas, finals) if _llama_cpp() else None
    if token_check is not None and not token_check["identical"]:
        from personaforge.export.gguf import ExportFailed

        raise ExportFailed(f"llama.cpp tokenises the Modelfile TEMPLATE differently from training for"
                           f" {', '.join(token_check['personas_with_mismatches'])}; no Modelfile written")
    written = []
    for persona in personas:
        path = export_dir / f"Modelfile.{persona.slug}"
        atomic_write_text(path, modelfile_text(gguf.name, persona, finals[persona.slug], sampling, run.name))
        written.append(path)
        log(f"wrote {display_path(path)} ({finals[persona.slug].entry} template)")
    return OllamaResult(gguf, written, finals[personas[0].slug].entry, exported_now, token_check)


def _llama_cpp() -> bool:
    from personaforge.export.parity import llama_cpp_available

    return llama_cpp_available()


def check_modelfile_tokens(gguf: Path, fmt: PromptFormat, tokenizer, personas: list[RunPersona],
                           formats: dict[str, OllamaFormat]) -> dict:
    """llama.cpp's tokens for the Go-rendered probes (BOS added as Ollama does) vs the training prompt ids.

    Only the vocabulary is loaded (no weights, so no compute kernels), in a child process like every llama.cpp call.
    """
    import tempfile

    from personaforge.export.gguf import ExportFailed
    from personaforge.export.llama_worker import LlamaFailed, LlamaJob, run_job
    from personaforge.export.native import NativeCrash
    from personaforge.train.tokenize import _prompt_ids

    job = LlamaJob(gguf, vocab_only=True)
    probes: list[tuple[str, list[int]]] = []
    for persona in personas:
        template = formats[persona.slug].full_template
        for conversation in probe_conversations(persona):
            probes.append((persona.name, _prompt_ids(fmt, tokenizer, fmt.render(conversation, tokenizer)[0])))
            job.tokenize(render_go(template, conversation), add_bos=True, special=True)  # add_bos: as the vocab says
    log_file = gguf.with_name(f"{gguf.stem}.llama-cpp-tokens.log")
    with tempfile.TemporaryDirectory(prefix=".llama-", dir=gguf.parent) as work:
        try:
            answer = run_job(job, Path(work), log_file, "llama.cpp")
        except NativeCrash as crash:
            raise ExportFailed(f"{crash}, tokenising the Modelfile prompts of {gguf.name}; no Modelfile written") from None
        except LlamaFailed as failed:
            raise ExportFailed(f"{failed} (tokenising the Modelfile prompts of {gguf.name}); no Modelfile written") from None
    log_file.unlink(missing_ok=True)
    mismatched = [name for (name, expected), got in zip(probes, answer["results"]) if got != expected]
    return {"checked": len(probes), "identical": not mismatched, "personas_with_mismatches": sorted(set(mismatched))}
