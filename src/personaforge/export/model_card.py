"""The README.md model card of a pushed run, generated from what the run recorded (never a hard-coded template).

YAML front-matter for the Hub (base_model, license, tags, library_name, pipeline_tag), then: who the personas are,
what the data was made of, how it was trained, how it scored (with 95% intervals), the exact prompt format with
usage snippets, limitations, and consent and rights. The facts themselves are gathered by ``model_card_facts``;
this module only renders them (and reads the front-matter back).
"""

from __future__ import annotations

import json
import re

import yaml

from personaforge.config import RECORD_TYPES
from personaforge.export.model_card_facts import EXAMPLE_QUESTION, CardInputs
from personaforge.run_personas import RunPersona
from personaforge.train.run import redact

# License identifiers the Hub accepts in `license:` (anything else is written as `other` + `license_name`).
HUB_LICENSES = frozenset((
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0", "etalab-2.0", "eupl-1.1",
    "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0", "isc", "h-research",
    "intel-research", "lppl-1.3c", "ms-pl", "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openrail++",
    "osl-3.0", "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
    "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3", "llama4", "gemma",
))


# ---------------------------------------------------------------------------------------------- render
def hub_license(license_: str | None) -> tuple[str | None, str | None]:
    """(license, license_name) for the front-matter: a Hub identifier, or `other` with a slug."""
    if not license_:
        return None, None
    key = re.sub(r"\s+", "-", license_.strip().lower())
    if key in HUB_LICENSES:
        return key, None
    return "other", re.sub(r"[^a-z0-9.-]+", "-", key).strip("-") or "custom"


def front_matter(inputs: CardInputs) -> dict:
    license_, license_name = hub_license(inputs.base.license)
    meta: dict = {}
    if inputs.base.hub_id:
        meta["base_model"] = inputs.base.hub_id
    if license_:
        meta["license"] = license_
    if license_name:
        meta["license_name"] = license_name
    meta["library_name"] = "peft" if inputs.adapter else "transformers"
    meta["pipeline_tag"] = "text-generation"
    tags = ["personaforge", "lora", "persona", "text-generation"]
    if any(f.endswith(".gguf") for f in inputs.files):
        tags += ["gguf", "ollama"]
    meta["tags"] = tags
    return meta


def _fence(text: str, lang: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _num(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _interval(ci: object) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return f"[{ci[0]:.3f}, {ci[1]:.3f}]"
    return "–"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _consent_banner(inputs: CardInputs) -> list[str]:
    if not inputs.missing_consent:
        return []
    who = ", ".join(inputs.missing_consent)
    if inputs.confirmed_rights:
        return [(f"> **Consent not recorded** for {who}. The publisher confirmed with `--confirm-rights` that they"
                " hold the rights to publish a model that imitates them."), ""]
    return [(f"> ⚠️ **CONSENT NOT RECORDED for {who}.** This folder was prepared with `persona push --dry-run`;"
            " `persona push` refuses to upload it until consent is recorded in the persona cards or the publisher"
            " confirms the rights with `--confirm-rights`."), ""]


def _personas(inputs: CardInputs) -> list[str]:
    out = ["## Personas", ""]
    for persona in inputs.personas:
        aliases = [a for a in persona.aliases if a != persona.name]
        out.append(f"### {persona.name}" + (f" (also: {', '.join(aliases)})" if aliases else ""))
        out += ["", "System prompt:", "", _fence(persona.system_prompt or "(none)", "text"), ""]
    return out


def _composition(inputs: CardInputs) -> list[str]:
    out = ["## Data", ""]
    comp = inputs.composition
    data = inputs.run.read_json("data.json")
    if not comp.counts:
        out += [f"Record counts are not available ({comp.note or 'no data files'}).", ""]
    observed = {t for split in comp.counts.values() for counter in split.values() for t in counter}
    types = [t for t in RECORD_TYPES if t in observed] + sorted(observed - set(RECORD_TYPES))
    for split, table in comp.counts.items():
        total = sum(sum(c.values()) for c in table.values())
        out += [f"**{split}** ({total} records, persona × record type):", "",
                "| persona | " + " | ".join(types) + " | total |",
                "|---|" + "---:|" * (len(types) + 1)]
        for persona, counter in sorted(table.items()):
            out.append(f"| {_cell(persona)} | " + " | ".join(str(counter.get(t, 0)) for t in types)
                       + f" | {sum(counter.values())} |")
        out.append("")
    if comp.counts and comp.note:
        out += [f"Not counted: {comp.note}.", ""]
    validation = (data.get("validation") or {}).get("samples")
    if validation:
        out += [f"{validation} of the training records were held out to measure validation loss during training.", ""]
    out += [("Record types: *extracted* (the person's own words from a transcript), *transformed* (paraphrases),"
            " *hypothetical* (questions the person was never asked, answered in their voice), *contrastive* and"
            " *negative* (in-character refusals and questions meant for another persona)."), ""]
    return out


def _training(inputs: CardInputs) -> list[str]:
    out = ["## Training", ""]
    cfg = inputs.config
    lora = cfg.get("lora") or {}
    train = cfg.get("train") or {}
    m = inputs.train_metrics
    base = f"`{inputs.base.name}`" + (f": {inputs.base.note}" if inputs.base.note else "")
    out.append(f"- Base model: {base}")
    out.append(f"- Method: LoRA r {lora.get('r')}, alpha {lora.get('alpha')}, dropout {lora.get('dropout')} on"
               f" {', '.join(lora.get('target_modules') or []) if isinstance(lora.get('target_modules'), list) else lora.get('target_modules')}"
               + (" (QLoRA, " + str((cfg.get('model') or {}).get('quantization')) + ")"
                  if (cfg.get("model") or {}).get("quantization") not in (None, "none") else ""))
    if m:
        losses = ", ".join(f"{k.replace('_', ' ')} {m[k]:.4f}" for k in ("final_loss", "eval_loss")
                           if isinstance(m.get(k), (int, float)))
        out.append(f"- {m.get('steps', '?')} steps, {m.get('epochs', train.get('epochs'))} epoch(s),"
                   f" {m.get('tokens', '?')} tokens" + (f"; {losses}" if losses else ""))
    env = inputs.env
    if env:
        out.append(f"- Trained on {env.get('device', '?')} in {env.get('dtype', '?')} with personaforge"
                   f" {env.get('personaforge', '?')}, transformers {env.get('transformers', '?')},"
                   f" peft {env.get('peft', '?')}, torch {env.get('torch', '?')}")
    out += [f"- Run: `{inputs.run.name}`", "", "The run's `config.yaml` (secrets redacted):", "",
            _fence(yaml.safe_dump(redact(cfg), sort_keys=False, allow_unicode=True).rstrip(), "yaml"), ""]
    return out


def _metric_rows(metrics: dict, baseline: dict | None) -> list[str]:
    ci = metrics.get("ci") or {}
    base_ci = (baseline or {}).get("ci") or {}
    rows = []
    for key, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        row = f"| {key} | {_num(value)} | {_interval(ci.get(key))} |"
        if baseline is not None:
            row += f" {_num(baseline.get(key))} | {_interval(base_ci.get(key))} |"
        rows.append(row)
    return rows


def _metrics(inputs: CardInputs) -> list[str]:
    out = ["## Evaluation", ""]
    result = inputs.evaluation
    if result is None:
        return out + ["This run has no evaluation yet (`persona eval RUN` writes one).", ""]
    m, base = result.metrics, result.baseline
    meta = m.get("meta") or {}
    samples = meta.get("samples")
    out += [f"From `eval/{result.name}/metrics.json`" + (f": {samples} held-out samples" if samples else "")
            + (", generated with " + ", ".join(f"{k} {v}" for k, v in (meta.get("generation") or {}).items())
               if meta.get("generation") else "")
            + ". Intervals are 95% bootstrap intervals over samples."
            + (" *Baseline* is the untuned base model with the same prompts." if base is not None else ""), ""]
    header = "| metric | value | 95% interval |" + (" baseline | baseline 95% interval |" if base is not None else "")
    out += [header, "|---|---:|---|" + ("---:|---|" if base is not None else "")]
    out += _metric_rows(m, base)
    out.append("")
    attribution = m.get("attribution") or {}
    if attribution:
        parts = [f"accuracy {_num(attribution.get('accuracy'))}"]
        if isinstance(attribution.get("macro_f1"), (int, float)):
            parts.append(f"macro F1 {_num(attribution['macro_f1'])}")
        if isinstance(attribution.get("reference_accuracy"), (int, float)):
            parts.append(f"on the reference answers {_num(attribution['reference_accuracy'])}")
        if isinstance(attribution.get("blending_index"), (int, float)):
            parts.append(f"blending index {_num(attribution['blending_index'])}")
        line = "Persona attribution (a classifier trained on each persona's training answers guesses who wrote each generated answer): " + ", ".join(parts) + "."
        if base is not None and isinstance((base.get("attribution") or {}).get("accuracy"), (int, float)):
            line += f" Baseline accuracy {_num(base['attribution']['accuracy'])}."
        out += [line, ""]
    per_persona = m.get("per_persona") or {}
    if per_persona:
        out += ["| persona | samples | rouge1 | semantic similarity |", "|---|---:|---:|---:|"]
        for persona, scores in per_persona.items():
            out.append(f"| {_cell(persona)} | {scores.get('samples', '–')} | {_num(scores.get('rouge1'))} |"
                       f" {_num(scores.get('semantic_similarity'))} |")
        out.append("")
    definitions = m.get("definitions") or {}
    if definitions:
        out += ["<details><summary>Metric definitions</summary>", ""]
        out += [f"- **{k}**: {v}" for k, v in definitions.items()]
        out += ["", "</details>", ""]
    return out


def _transformers_snippet(inputs: CardInputs) -> str:
    persona = inputs.personas[0] if inputs.personas else RunPersona("Persona", "")
    load_model = ('model = AutoModelForCausalLM.from_pretrained(repo, subfolder=subfolder)'
                  if not inputs.adapter else
                  f'base = AutoModelForCausalLM.from_pretrained("{inputs.base.hub_id or "BASE_MODEL"}")\n'
                  "model = PeftModel.from_pretrained(base, repo, subfolder=subfolder)")
    imports = "from transformers import AutoModelForCausalLM, AutoTokenizer"
    if inputs.adapter:
        imports += "\nfrom peft import PeftModel"
    stop_note = ""
    if inputs.fmt.style == "plain":
        stops = inputs.fmt.stop_strings([p.name for p in inputs.personas])
        build = (f"system = {json.dumps(persona.system_prompt, ensure_ascii=False)}\n"
                 f"prompt = system + \"\\n\\nHuman: {EXAMPLE_QUESTION}\\n\\n{persona.name}:\"\n"
                 "inputs = tokenizer(prompt, return_tensors=\"pt\")  # plain style: the tokenizer adds its own BOS")
        stop_note = (f"\nstops = {json.dumps(stops, ensure_ascii=False)}  # cut the answer at the first of these\n"
                     "answer = min((answer.split(s)[0] for s in stops), key=len).strip()")
    else:
        build = (f"messages = [{{\"role\": \"system\", \"content\": {json.dumps(persona.system_prompt, ensure_ascii=False)}}},\n"
                 f"            {{\"role\": \"user\", \"content\": \"{EXAMPLE_QUESTION}\"}}]\n"
                 "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\","
                 " return_dict=True)")
    gen = (inputs.evaluation.metrics.get("meta") or {}).get("generation") if inputs.evaluation else None
    max_new = (gen or {}).get("max_new_tokens") or (inputs.config.get("eval") or {}).get("max_new_tokens") or 128
    return _fence(
        f"{imports}\n\nrepo, subfolder = \"{inputs.repo}\", \"{inputs.subfolder}\"\n"
        "tokenizer = AutoTokenizer.from_pretrained(repo, subfolder=subfolder)\n"
        f"{load_model}\n\n{build}\n"
        f"output = model.generate(**inputs, max_new_tokens={max_new}, do_sample=False)\n"
        "answer = tokenizer.decode(output[0, inputs[\"input_ids\"].shape[1]:], skip_special_tokens=True)"
        f"{stop_note}\nprint(answer)", "python")


def _ollama_snippet(inputs: CardInputs) -> list[str]:
    name = inputs.repo.split("/")[-1]
    if inputs.modelfiles:
        first = inputs.modelfiles[0]
        slug = first.removeprefix("Modelfile.")
        listed = ", ".join(f"`{m}`" for m in inputs.modelfiles)
        ggufs = [f.removeprefix("gguf/") for f in inputs.files if f.startswith("gguf/") and f.endswith(".gguf")]
        checks = [f"- `{g}`: {inputs.parity[g]}" if g in inputs.parity else f"- `{g}`" for g in ggufs]
        return [(f"The `gguf/` folder holds the GGUF file(s) and one Modelfile per persona ({listed}); each Modelfile"
                " carries the training prompt format as its TEMPLATE, the persona's system prompt and the stop"
                " strings. Each GGUF was scored token by token against the merged weights when it was exported"
                " (teacher-forced; `*.parity.json` has the figures):"), "", *checks, "",
                _fence(f"hf download {inputs.repo} --include \"{inputs.subfolder}/gguf/*\" --local-dir {name}\n"
                       f"cd {name}/{inputs.subfolder}/gguf\n"
                       f"ollama create {slug} -f {first}\nollama run {slug}", "bash"), ""]
    if inputs.adapter:
        return [("This upload holds only the LoRA adapter. For Ollama, export the run with personaforge"
                " (`persona export gguf RUN` then `persona export ollama RUN`) and use the Modelfiles it writes:"), "",
                _fence("ollama create PERSONA -f RUN/export/Modelfile.PERSONA\nollama run PERSONA", "bash"), ""]
    return [("No GGUF was exported for this upload. Export one with personaforge, which writes one Modelfile per"
            " persona in the training prompt format, then:"), "",
            _fence("persona export gguf RUN && persona export ollama RUN\n"
                   "ollama create PERSONA -f RUN/export/Modelfile.PERSONA\nollama run PERSONA", "bash"), ""]


def _prompt_format(inputs: CardInputs) -> list[str]:
    fmt = inputs.fmt
    out = ["## Prompt format", ""]
    if fmt.style == "plain":
        out += [("The model was trained on the plain style (the original pipeline's). A prompt is the persona's system"
                " prompt, then `Human:` / `<Name>:` turns separated by blank lines, ending with `<Name>:`; the answer"
                " follows after a space. The tokenizer adds its own special tokens (BOS) to the prompt."), "",
                _fence("{system}\\n\\nHuman: {earlier question}\\n\\n{Name}: {earlier answer}\\n\\nHuman: {question}"
                       "\\n\\n{Name}:", "text"), "",
                "Stop the answer at any of: " + ", ".join(f"`{json.dumps(s)}`"
                                                          for s in fmt.stop_strings([p.name for p in inputs.personas]))
                + (f", or the end-of-sequence token `{fmt.eos_token}`." if fmt.eos_token else "."), ""]
    else:
        out += [("The model was trained on chat messages (system = the persona's system prompt, then user / assistant"
                " turns) rendered with this chat template (also saved with the tokenizer here, and in"
                " `prompt_format.json`):"), "", _fence(fmt.chat_template or "", "jinja"), "",
                f"Generation ends at `{fmt.eos_token}`." if fmt.eos_token else "", ""]
    prompt, _ = inputs.example
    who = inputs.personas[0].name if inputs.personas else "the persona"
    out += [(f"A two-turn conversation with {who}, exactly as the model sees it (rendered by personaforge's prompt"
            " module, the code that built the training samples):"), "", _fence(prompt, "text"), "",
            "### Use with transformers", "", _transformers_snippet(inputs), ""]
    if inputs.adapter and inputs.base.note:
        out += [(f"The adapter was trained on top of {inputs.base.note}. On the original `{inputs.base.hub_id}`"
                " weights its behaviour was not measured (the evaluation above used the exact base); `persona models pull"
                f" {inputs.base.name}` rebuilds the exact base."), ""]
    out += ["### Use with Ollama", ""] + _ollama_snippet(inputs)
    return out


def _limitations(inputs: CardInputs) -> list[str]:
    names = [p.name for p in inputs.personas]
    return ["## Limitations", "",
            (f"- This model imitates how {_names(names) if names else 'its personas'} spoke in the training transcripts."
            " It is an AI persona, not the person: its answers are generated, and it states things the person never"
            " said, including false facts about their life. Tell the people you talk with that they talk with an AI."),
            ("- It learned from a small dataset (see *Data*); expect it to repeat favourite phrases, drift out of"
            " character on topics the transcripts never touched, and blend personas (the attribution figures above"
            " measure how often)."),
            ("- Overlap metrics (ROUGE, BLEU) reward wording shared with one reference answer; they are a rough guide"
            " to style, not to truthfulness."),
            ("- Use the prompt format above exactly: a different template or missing stop strings make the model talk"
            " past its turn or answer as someone else."),
            f"- Everything the base model (`{inputs.base.hub_id or inputs.base.name}`) gets wrong, this one can too.",
            ""]


def _consent(inputs: CardInputs) -> list[str]:
    out = ["## Consent and rights", "",
           "What the persona cards record about each person's consent and about where the material comes from:", "",
           "| persona | consent | source |", "|---|---|---|"]
    for persona in inputs.personas:
        consent = persona.consent.strip() if persona.consent and persona.consent.strip() else "**not recorded**"
        source = persona.source.strip() if persona.source and persona.source.strip() else "not recorded"
        out.append(f"| {_cell(persona.name)} | {_cell(consent)} | {_cell(source)} |")
    out.append("")
    if inputs.missing_consent:
        who = ", ".join(inputs.missing_consent)
        if inputs.confirmed_rights:
            out += [(f"No consent is recorded for {who}; the publisher passed `--confirm-rights`, confirming that they"
                    " hold the rights to publish a model that imitates them."), ""]
        else:
            out += [(f"**No consent is recorded for {who}, and nobody has confirmed the rights to publish a model that"
                    " imitates them. Do not publish this folder as it is.**"), ""]
    else:
        out += ["Consent is recorded for every persona.", ""]
    license_ = inputs.base.license or "unknown"
    out += [f"The base model's license ({license_}) applies to these weights"
            + (f"; check it at https://huggingface.co/{inputs.base.hub_id}" if inputs.base.hub_id else "")
            + ". The personas' words remain theirs; if a person asks for this model to be taken down, take it down.",
            ""]
    return out


def render_model_card(inputs: CardInputs) -> str:
    names = [p.name for p in inputs.personas]
    what = "LoRA adapter" if inputs.adapter else "fine-tuned model"
    lines = ["---", yaml.safe_dump(front_matter(inputs), sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {inputs.subfolder}: a {what} that speaks as {_names(names) if names else 'its personas'}", ""]
    lines += _consent_banner(inputs)
    base = inputs.base.hub_id or inputs.base.name
    lines += [f"Fine-tuned from `{base}` with LoRA by personaforge from"
              f" interview transcripts, to answer in the voice of {len(names)} persona(s). This folder is one model"
              f" of the `{inputs.repo}` lineup (one subfolder per model)."
              + (" It holds only the LoRA adapter; load it on top of the base model." if inputs.adapter else
                 " It holds the merged weights" + (" and a GGUF file for llama.cpp / Ollama." if inputs.modelfiles
                                                   or any(f.endswith('.gguf') for f in inputs.files) else "."))
              , ""]
    for section in (_personas, _composition, _training, _metrics, _prompt_format, _limitations, _consent):
        lines += section(inputs)
    lines += ["## Files", "", *[f"- `{f}`" for f in inputs.files], ""]
    return "\n".join(lines).rstrip() + "\n"


def parse_front_matter(text: str) -> dict:
    """The YAML between the leading `---` lines of a card ({} when there is none)."""
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---\n", 4)
    if end < 0:
        return {}
    data = yaml.safe_load(text[4:end])
    return data if isinstance(data, dict) else {}
