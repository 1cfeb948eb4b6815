"""`persona push`: a run's weights (merged, or the adapter), tokenizer, GGUF and model card to the Hugging Face Hub.

One repo holds a lineup, one subfolder per model. Every check a user can fail (run, repo id, subfolder, consent,
token, --out) runs before anything is written; the upload folder is staged in a temporary folder (renamed into
place for --dry-run, deleted after a real upload). The token is read from HF_TOKEN or the stored login, handed to
huggingface_hub and never printed, logged or written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from personaforge.errors import PersonaForgeError
from personaforge.export import model_card, model_card_facts
from personaforge.fileio import atomic_write_text, default_mode, display_path, dumps_json, replace_dir
from personaforge.prompting import PromptFormat
from personaforge.run_personas import RunPersona, run_personas
from personaforge.train.run import Run

Log = Callable[[str], None]
LOGIN_HINT = "set HF_TOKEN or run `hf auth login`"
LINEUP_MARKER = "<!-- personaforge:lineup -->"
PROMPT_FORMAT = "prompt_format.json"
# Large files are hard-linked into the staging folder (no extra disk); small ones are copied, so rewriting them
# there (the tokenizer, adapter_config.json) can never change the run's own files.
LINKED_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
_SUBFOLDER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d-")


@dataclass(frozen=True)
class PushOptions:
    run: Run
    repo: str
    subfolder: str | None = None
    adapter: bool = False
    private: bool = True
    dry_run: bool = False
    out: Path | None = None
    confirm_rights: bool = False


@dataclass
class PushResult:
    repo: str
    subfolder: str
    files: list[tuple[str, int]]          # (path in the folder, bytes)
    folder: Path | None = None            # --dry-run: where the folder was written
    url: str | None = None                # a real push: the subfolder on the Hub
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ preflight
def check_repo(repo: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    repo = repo.strip()
    try:
        validate_repo_id(repo)
    except HFValidationError:
        repo = ""
    if repo.count("/") != 1:
        raise PersonaForgeError(f"--repo '{repo}': give OWNER/NAME (your user or organisation name, a slash, and the"
                                " repo name; letters, digits, '-', '_' and '.')")
    return repo


def default_subfolder(run: Run) -> str:
    """The run's config name (`smollm2_135m_instruct`): output.name, else the config file the run was made from."""
    cfg = run.train_config()
    if cfg.output.name:
        return _clean_subfolder(cfg.output.name)
    name = _STAMP.sub("", run.name)
    command = str(run.read_json("env.json").get("command") or "")
    for token in command.split():
        stem = Path(token).stem
        if token.endswith((".yaml", ".yml")) and (name == stem or re.fullmatch(re.escape(stem) + r"-\d+", name)):
            return _clean_subfolder(stem)
    return _clean_subfolder(name)


def _clean_subfolder(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-._") or "model"


def check_subfolder(subfolder: str) -> str:
    subfolder = subfolder.strip().strip("/")
    if not _SUBFOLDER.fullmatch(subfolder) or ".." in subfolder.split("/") or len(subfolder) > 96:
        raise PersonaForgeError(f"--subfolder '{subfolder}': use letters, digits, '.', '_' and '-' (parts separated"
                                " by '/'), starting with a letter or digit")
    return subfolder


def missing_consent(personas: list[RunPersona]) -> list[str]:
    return [p.name for p in personas if not (p.consent and p.consent.strip())]


def find_token() -> str | None:
    """HF_TOKEN or the stored login, via huggingface_hub (None when there is neither)."""
    from huggingface_hub import get_token

    try:
        token = get_token()
    except Exception as exc:  # noqa: BLE001 - e.g. a failed OIDC exchange; its message is not shown (it may hold secrets)
        raise PersonaForgeError(f"reading the Hugging Face token failed ({type(exc).__name__}); {LOGIN_HINT}") from None
    return token.strip() if token and token.strip() else None


def _looks_like_push_folder(folder: Path) -> bool:
    """A folder an earlier --dry-run wrote: a personaforge model card, and not a clone of a repo or its index."""
    if (folder / ".git").exists():
        return False
    try:
        text = (folder / "README.md").read_text(encoding="utf-8")
        meta = model_card.parse_front_matter(text)
    except Exception:  # noqa: BLE001 - unreadable, or malformed YAML in someone else's README: not ours
        return False
    return "personaforge" in (meta.get("tags") or []) and LINEUP_MARKER not in text


def check_destination(dest: Path) -> None:
    """--dry-run replaces an earlier push folder, never a folder of something else."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise PersonaForgeError(f"--out {display_path(dest)}: exists and is not a folder; choose a new folder")
    if dest.is_dir() and any(dest.iterdir()) and not _looks_like_push_folder(dest):
        raise PersonaForgeError(f"--out {display_path(dest)}: is a folder that persona push did not write; choose an"
                                " empty or new folder")


# ------------------------------------------------------------------------------------------ the folder
@dataclass
class Plan:
    options: PushOptions
    subfolder: str
    personas: list[RunPersona]
    missing: list[str]
    fmt: PromptFormat
    weights: Path                       # merged/ or adapter/
    ggufs: list[Path]
    modelfiles: list[Path]
    parity_reports: list[Path]
    base: model_card_facts.BaseModel


def _weights_ready(run: Run) -> bool:
    merged = run.path / "merged"
    if not (merged / "config.json").is_file():
        return False
    weights = [p for p in merged.iterdir() if p.suffix in (".safetensors", ".bin")]
    adapter = run.adapter_dir / "adapter_model.safetensors"
    # An adapter newer than the merged weights (a resumed run trained on) means merged/ is stale.
    return bool(weights) and not (adapter.is_file() and adapter.stat().st_mtime > min(p.stat().st_mtime for p in weights))


def plan_push(options: PushOptions, log: Log) -> Plan:
    """Every user error, before anything is written or uploaded."""
    run = options.run
    run.require_finished("pushed")
    subfolder = check_subfolder(options.subfolder) if options.subfolder else default_subfolder(run)
    personas = run_personas(run)
    missing = missing_consent(personas)
    if missing and not options.confirm_rights:
        if not options.dry_run:
            raise PersonaForgeError(
                f"no consent is recorded for {', '.join(missing)} (the persona cards' `consent:` field); record it"
                " in the cards for future runs, or pass --confirm-rights to confirm you hold the rights to publish a"
                " model that imitates them")
        log(f"warning: no consent recorded for {', '.join(missing)}; the card says so prominently, and a real push"
            " needs --confirm-rights")
    if options.dry_run:
        check_destination(options.out or run.path / "push")
    elif options.out is not None:
        raise PersonaForgeError("--out is for --dry-run only (a real push uploads a temporary folder)")
    fmt = PromptFormat.from_json(run.read_json(PROMPT_FORMAT) or {"style": "plain"})
    export = run.path / "export"
    ggufs = sorted(export.glob("*.gguf")) if export.is_dir() else []
    modelfiles = sorted(export.glob("Modelfile.*")) if export.is_dir() else []
    if options.adapter and ggufs:
        log("note: --adapter: the GGUF in export/ is not uploaded (it holds the full merged weights)")
        ggufs, modelfiles = [], []
    # Each GGUF's parity report (export gguf writes <stem>.parity.json): the evidence that it matches the weights.
    reports = [r for r in (g.with_name(g.stem + ".parity.json") for g in ggufs) if r.is_file()]
    weights = run.adapter_dir if options.adapter else run.path / "merged"
    return Plan(options, subfolder, personas, missing, fmt, weights, ggufs, modelfiles, reports,
                model_card_facts.base_model(run))


def ensure_weights(plan: Plan, log: Log) -> None:
    """Merged weights exist and are current, or are made now (merge_run checks disk space and the logits)."""
    if plan.options.adapter or _weights_ready(plan.options.run):
        return
    from personaforge.merge import merge_run

    log(f"merging {plan.options.run.name} first (no current merged/ folder)")
    merge_run(plan.options.run, log=log)


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix in LINKED_SUFFIXES:
        try:
            os.link(source, target)
            return
        except OSError:
            pass  # another disk, or links not allowed: copy
    shutil.copy2(source, target)


def _folder_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "README.md" and not p.name.startswith("."))


def _sources(plan: Plan) -> list[tuple[Path, str]]:
    files = [(p, p.relative_to(plan.weights).as_posix()) for p in _folder_files(plan.weights)
             if p.relative_to(plan.weights).as_posix() != PROMPT_FORMAT]  # the run's own copy is the one that counts
    if (plan.options.run.path / PROMPT_FORMAT).is_file():
        files.append((plan.options.run.path / PROMPT_FORMAT, PROMPT_FORMAT))
    files += [(p, f"gguf/{p.name}") for p in plan.ggufs + plan.modelfiles + plan.parity_reports]
    return files


def _check_space(sources: list[tuple[Path, str]], parent: Path) -> None:
    from personaforge.merge import check_disk

    probe = parent
    while not probe.exists():
        probe = probe.parent
    linked_dev = os.stat(probe).st_dev
    needed = sum(p.stat().st_size for p, _ in sources
                 if p.suffix not in LINKED_SUFFIXES or p.stat().st_dev != linked_dev)
    check_disk(parent, needed + 10_000_000, "the push folder")


def _adapter_config(source: Path, base: model_card_facts.BaseModel, revision: str | None) -> str:
    """The adapter's config names its base by hub id (the run recorded a local cache path)."""
    data = json.loads(source.read_text(encoding="utf-8"))
    if base.hub_id:
        data["base_model_name_or_path"] = base.hub_id
        data["revision"] = revision
    else:
        data["base_model_name_or_path"] = Path(str(data.get("base_model_name_or_path") or base.name)).name
    return dumps_json(data)


def _tokenizer(plan: Plan):
    from transformers import AutoTokenizer

    from personaforge.models import quiet_transformers

    quiet_transformers()
    return AutoTokenizer.from_pretrained(plan.weights)


def build_folder(plan: Plan, folder: Path, log: Log) -> list[tuple[str, int]]:
    """Write the upload folder's content into ``folder`` (empty); returns (path, bytes) for each file."""
    run, options = plan.options.run, plan.options
    sources = _sources(plan)
    _check_space(sources, folder)
    tokenizer = _tokenizer(plan)
    revision = run.train_config().model.revision
    for source, relative in sources:
        if options.adapter and relative == "adapter_config.json":
            atomic_write_text(folder / relative, _adapter_config(source, plan.base, revision))
        else:
            _place(source, folder / relative)
    if plan.fmt.style == "chat" and plan.fmt.chat_template and tokenizer.chat_template != plan.fmt.chat_template:
        # The pushed tokenizer must render exactly what the model was trained on.
        tokenizer.chat_template = plan.fmt.chat_template
        tokenizer.save_pretrained(folder)
    if not (folder / PROMPT_FORMAT).is_file():
        atomic_write_text(folder / PROMPT_FORMAT, dumps_json(plan.fmt.to_json()))
    relative_files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    inputs = model_card_facts.CardInputs(
        run=run, repo=options.repo, subfolder=plan.subfolder, adapter=options.adapter, personas=plan.personas,
        fmt=plan.fmt, base=plan.base, config=run.config, composition=model_card_facts.data_composition(run),
        evaluation=model_card_facts.latest_eval(run),
        example=(model_card_facts.example_conversation(plan.fmt, plan.personas[0], tokenizer) if plan.personas
                 else ("", None)),
        files=sorted(["README.md", *relative_files]), modelfiles=[p.name for p in plan.modelfiles],
        missing_consent=plan.missing, confirmed_rights=options.confirm_rights, parity=_parity(plan.parity_reports),
        train_metrics={k: v for k, v in run.read_json("train_metrics.json").items() if k != "loss_history"},
        env=run.read_json("env.json"))
    atomic_write_text(folder / "README.md", model_card.render_model_card(inputs))
    return [(p.relative_to(folder).as_posix(), p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()]


def _parity(reports: list[Path]) -> dict[str, str]:
    """GGUF file name → its parity figures in one line (best effort: a report we cannot read is left out)."""
    try:
        from personaforge.export.gguf import summary
    except ImportError:
        return {}
    found = {}
    for report in reports:
        try:
            found[report.name.removesuffix(".parity.json") + ".gguf"] = summary(json.loads(report.read_text("utf-8")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


@contextlib.contextmanager
def _staging(parent: Path, name: str) -> Iterator[Path]:
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_dry_run(plan: Plan, log: Log) -> tuple[Path, list[tuple[str, int]]]:
    """The exact folder a push would upload, built beside its destination and renamed into place."""
    dest = (plan.options.out or plan.options.run.path / "push").resolve()
    log(f"writing the upload folder {display_path(dest)}")
    with _staging(dest.parent, dest.name) as staging:
        files = build_folder(plan, staging, log)
        os.chmod(staging, default_mode(directory=True))  # mkdtemp makes it private; the result is an ordinary folder
        replace_dir(staging, dest)
    return dest, files


# ------------------------------------------------------------------------------------------ the upload
def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "<token>") if token else text


def _hub_failure(exc: BaseException, repo: str, token: str | None) -> PersonaForgeError | None:
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    from personaforge.models.common import first_line
    from personaforge.models.load import exception_chain, is_network_error

    for cause in exception_chain(exc):
        if is_network_error(cause):
            return PersonaForgeError(f"the Hugging Face Hub cannot be reached ({_scrub(first_line(cause), token)[:160]});"
                                     " check the connection and retry (or try --dry-run, which needs no network)")
        if isinstance(cause, RepositoryNotFoundError):
            return PersonaForgeError(f"repo '{repo}' was not found or the token cannot see it; check --repo and that"
                                     f" the token belongs to its owner ({LOGIN_HINT})")
        if isinstance(cause, HfHubHTTPError):
            status = getattr(getattr(cause, "response", None), "status_code", None)
            if status == 401:
                return PersonaForgeError(f"the Hub rejected the token (HTTP 401); {LOGIN_HINT} with a valid token")
            if status == 403:
                return PersonaForgeError(f"the token may not write to '{repo}' (HTTP 403); use a token with write access"
                                         " to that user or organisation (https://huggingface.co/settings/tokens)")
            return PersonaForgeError(f"the Hub answered with an error for '{repo}'"
                                     f" ({_scrub(first_line(cause), token)[:200]}); retry later")
    return None


@contextlib.contextmanager
def _hub_errors(repo: str, token: str | None) -> Iterator[None]:
    try:
        yield
    except PersonaForgeError:
        raise
    except Exception as exc:  # mapped to one line when it is a hub or network failure
        failure = _hub_failure(exc, repo, token)
        if failure is None:
            raise
        raise failure from None


def _existing_repo(api, repo: str, token: str):
    from huggingface_hub.errors import RepositoryNotFoundError

    try:
        return api.repo_info(repo, repo_type="model", token=token)
    except RepositoryNotFoundError:
        return None


def _lineup_readme(repo: str, folders: list[str], meta: dict, previous: dict) -> str:
    """The repo's root README: the lineup's subfolders; front-matter merged with the earlier index's."""
    bases = [b for b in [*_as_list(previous.get("base_model")), *_as_list(meta.get("base_model"))] if b]
    licenses = {l for l in [previous.get("license"), meta.get("license")] if l}
    front: dict = {}
    if bases:
        front["base_model"] = list(dict.fromkeys(bases))
    if len(licenses) == 1:
        front["license"] = licenses.pop()
        if front["license"] == "other":
            front["license_name"] = meta.get("license_name") or previous.get("license_name") or "custom"
    front["pipeline_tag"] = "text-generation"
    front["tags"] = list(dict.fromkeys([*_as_list(previous.get("tags")), *_as_list(meta.get("tags"))]))
    import yaml

    rows = [f"| `{f}` | [model card]({f}/README.md) |" for f in folders]
    return "\n".join([
        "---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
        f"# {repo.split('/')[-1]}: persona models", "",
        "Models fine-tuned with personaforge to speak as people from interview transcripts, one subfolder per"
        " model. Each subfolder's model card has its personas, data, metrics with intervals, prompt format, usage"
        " and the consent and rights recorded for each person." + ("" if "license" in front else
                                                                    " Licenses differ per model; see each card."),
        "", "| model | card |", "|---|---|", *rows, "", LINEUP_MARKER, ""])


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _update_lineup(api, repo: str, token: str, info, subfolder: str, meta: dict, log: Log) -> str:
    """Create or refresh the root README.md index, unless the repo has a README.md that persona push did not write."""
    siblings = [s.rfilename for s in (getattr(info, "siblings", None) or [])] if info is not None else []
    previous: dict = {}
    if "README.md" in siblings:
        with tempfile.TemporaryDirectory() as scratch:
            text = Path(api.hf_hub_download(repo, "README.md", token=token, local_dir=scratch)).read_text(encoding="utf-8")
        if LINEUP_MARKER not in text:
            return "the repo's own root README.md was left as it is"
        previous = model_card.parse_front_matter(text)
    folders = {name.rsplit("/", 1)[0] for name in siblings if name.endswith("/README.md")} | {subfolder}
    readme = _lineup_readme(repo, sorted(folders), meta, previous)
    api.upload_file(path_or_fileobj=readme.encode("utf-8"), path_in_repo="README.md", repo_id=repo, token=token,
                    repo_type="model", commit_message=f"personaforge: lineup index ({len(folders)} models)")
    return f"root README.md lists {len(folders)} model(s)"


def upload(plan: Plan, token: str, log: Log) -> PushResult:
    """Check visibility, stage the folder, create the repo if needed, upload, refresh the lineup index."""
    from huggingface_hub import HfApi

    options, repo = plan.options, plan.options.repo
    api = HfApi()
    notes: list[str] = []
    with _hub_errors(repo, token):
        info = _existing_repo(api, repo, token)
    if info is not None and options.private and info.private is False:
        raise PersonaForgeError(f"repo '{repo}' exists and is public, and this push is private by default; pass"
                                " --public to add this model to it, or push to another repo")
    if info is not None and not options.private and info.private:
        notes.append(f"repo '{repo}' is private and stays private (change its visibility on the Hub)")
    ensure_weights(plan, log)
    with _staging(options.run.path, "push") as staging:
        files = build_folder(plan, staging, log)
        total = sum(size for _, size in files)
        log(f"uploading {len(files)} files ({total / 1e6:.1f} MB) to {repo}/{plan.subfolder}"
            f" ({'private' if options.private else 'public'})")
        with _hub_errors(repo, token):
            api.create_repo(repo, token=token, private=options.private, repo_type="model", exist_ok=True)
            api.upload_folder(repo_id=repo, folder_path=staging, path_in_repo=plan.subfolder, token=token,
                              repo_type="model",
                              commit_message=f"personaforge: {plan.subfolder} from run {options.run.name}")
        meta = model_card.parse_front_matter((staging / "README.md").read_text(encoding="utf-8"))
        try:  # the model is up; a failed index is a note, not a failed push
            notes.append(_update_lineup(api, repo, token, info, plan.subfolder, meta, log))
        except Exception as exc:
            failure = _hub_failure(exc, repo, token)
            if failure is None:
                raise
            notes.append(f"the root README.md index was not updated: {failure}")
    url = f"https://huggingface.co/{repo}/tree/main/{plan.subfolder}"
    return PushResult(repo, plan.subfolder, files, url=url, notes=notes)


# ------------------------------------------------------------------------------------------ entry
def push(options: PushOptions, log: Log) -> PushResult:
    """`persona push`: checks → (merge) → dry-run folder, or upload."""
    plan = plan_push(options, log)
    if options.dry_run:
        ensure_weights(plan, log)
        folder, files = write_dry_run(plan, log)
        return PushResult(options.repo, plan.subfolder, files, folder=folder)
    token = find_token()
    if token is None:
        raise PersonaForgeError(f"no Hugging Face token: {LOGIN_HINT} (a token with write access), or use --dry-run"
                                " to write the upload folder without one")
    return upload(plan, token, log)
