"""`persona push`: the dry-run folder, the upload through a patched huggingface_hub, consent, token handling."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml

from personaforge.export.model_card_facts import EXAMPLE_HISTORY, EXAMPLE_QUESTION
from personaforge.fileio import display_path
from personaforge.prompting import Conversation, PromptFormat
from tests.conftest import assert_user_error, run_persona
from tests.push.conftest import FAKE_TOKEN, files_under, with_consent

REPO = "me/lineup"


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def folder_names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def one_error(result) -> str:
    """Exit 2 and one `error:` line, no traceback (in-process form of assert_user_error)."""
    assert result.code == 2, (result.code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


class FakeHub:
    """huggingface_hub's HfApi patched at its network methods: records every call, uploads nothing."""

    def __init__(self, monkeypatch, *, existing=None, root_readme: str | None = None, fail_upload=None):
        from huggingface_hub import HfApi

        self.calls: list[tuple[str, dict]] = []
        self.uploaded: dict[str, bytes] = {}
        self.existing, self.root_readme, self.fail_upload = existing, root_readme, fail_upload
        for name in ("repo_info", "create_repo", "upload_folder", "upload_file", "hf_hub_download"):
            monkeypatch.setattr(HfApi, name, getattr(self, f"_{name}"), raising=True)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def call(self, name: str) -> dict:
        return next(kwargs for called, kwargs in self.calls if called == name)

    def _repo_info(self, repo_id, **kwargs):
        self.calls.append(("repo_info", {"repo_id": repo_id, **kwargs}))
        if self.existing is None:
            from huggingface_hub.errors import RepositoryNotFoundError

            raise RepositoryNotFoundError("404 not found", response=_response(404))
        return self.existing

    def _create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{repo_id}"

    def _upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        if self.fail_upload is not None:
            raise self.fail_upload
        folder = Path(kwargs["folder_path"])
        self.uploaded = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    def _upload_file(self, **kwargs):
        self.calls.append(("upload_file", kwargs))

    def _hf_hub_download(self, repo_id, filename, **kwargs):
        self.calls.append(("hf_hub_download", {"repo_id": repo_id, "filename": filename, **kwargs}))
        path = Path(kwargs["local_dir"]) / filename
        path.write_text(self.root_readme or "", encoding="utf-8")
        return str(path)


def _response(status: int):
    import httpx2 as httpx  # huggingface_hub's HTTP client in this version

    return httpx.Response(status, request=httpx.Request("POST", "https://huggingface.co/api/repos/create"))


class Info:
    """The two fields of huggingface_hub's ModelInfo that push reads."""

    def __init__(self, private: bool, files: list[str]):
        from huggingface_hub.hf_api import RepoSibling

        self.private = private
        self.siblings = [RepoSibling(rfilename=f) for f in files]


# ------------------------------------------------------------------------------------------ dry run
def test_dry_run_writes_the_exact_upload_folder(pushed_run, tiny_dataset, cli, tmp_path):
    out = tmp_path / "upload"
    result = cli("push", str(pushed_run), "--repo", REPO, "--dry-run", "--out", str(out))
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == f"push folder: {display_path(out)}"
    assert f"to {REPO}/train (private)" in result.stdout  # default subfolder: the config's name (train.yaml)
    names = folder_names(out)
    assert {"README.md", "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json",
            "prompt_format.json"} <= names
    for name in names:
        assert f"  {name}  " in result.stdout
    assert (out / "model.safetensors").read_bytes() == (pushed_run / "merged" / "model.safetensors").read_bytes()
    assert not list(tmp_path.glob(".upload.*")), "the staging folder was left behind"

    card = (out / "README.md").read_text(encoding="utf-8")
    meta = front_matter(card)
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert {"personaforge", "lora", "persona", "text-generation"} <= set(meta["tags"])
    assert "base_model" not in meta  # a local base folder has no hub id to point at

    # Metrics with 95% intervals from the latest eval, next to the baseline.
    metrics = json.loads((pushed_run / "eval" / "eval" / "metrics.json").read_text())
    lo, hi = metrics["ci"]["rouge1"]
    assert (f"| rouge1 | {metrics['rouge1']:.3f} | [{lo:.3f}, {hi:.3f}] | {metrics['rouge1'] / 2:.3f} |"
            " [0.010, 0.040] |") in card
    assert f"{metrics['meta']['samples']} held-out samples" in card

    # Data composition: persona × record type, counted from the files the run trained on.
    train = [json.loads(line) for line in (tiny_dataset / "train.jsonl").read_text().splitlines() if line.strip()]
    ada = Counter(r["type"] for r in train if r["persona"] == "Ada Bell")
    assert f"**train** ({len(train)} records" in card
    assert f"| Ada Bell | {ada['extracted']} |" in card

    # The exact prompt format: the example is what the training renderer makes, and the pushed tokenizer agrees.
    from transformers import AutoTokenizer

    fmt = PromptFormat.from_json(json.loads((pushed_run / "prompt_format.json").read_text()))
    personas = json.loads((pushed_run / "personas.json").read_text())["personas"]
    tokenizer = AutoTokenizer.from_pretrained(out)
    conversation = Conversation(personas[0]["system_prompt"], personas[0]["name"], (EXAMPLE_HISTORY,), EXAMPLE_QUESTION)
    prompt, _ = fmt.render(conversation, tokenizer)
    assert fmt.style == "chat" and f"```text\n{prompt}\n```" in card
    messages = [{"role": "system", "content": personas[0]["system_prompt"]},
                {"role": "user", "content": EXAMPLE_HISTORY.question},
                {"role": "assistant", "content": EXAMPLE_HISTORY.answer}, {"role": "user", "content": EXAMPLE_QUESTION}]
    assert tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == prompt
    assert fmt.chat_template in card
    assert 'AutoModelForCausalLM.from_pretrained(repo, subfolder=subfolder)' in card and "ollama create" in card

    # Consent and rights: this dataset's cards record none, and the dry-run card says so up front.
    assert "| Ada Bell | **not recorded** | not recorded |" in card
    assert card.index("CONSENT NOT RECORDED for Ada Bell, Ben Ortiz") < card.index("## Personas")
    assert "warning: no consent recorded for Ada Bell, Ben Ortiz" in result.stderr
    for section in ("## Personas", "## Data", "## Training", "## Evaluation", "## Prompt format", "## Limitations",
                    "## Consent and rights"):
        assert section in card


def test_dry_run_adapter_uploads_only_the_adapter(pushed_run, cli, tmp_path):
    out = tmp_path / "adapter-upload"
    result = cli("push", str(pushed_run), "--repo", REPO, "--adapter", "--dry-run", "--out", str(out), "--subfolder",
                 "tiny-adapter")
    assert result.code == 0, result.stderr
    assert f"to {REPO}/tiny-adapter (private)" in result.stdout
    names = folder_names(out)
    assert {"README.md", "adapter_model.safetensors", "adapter_config.json", "tokenizer.json"} <= names
    assert "model.safetensors" not in names and "config.json" not in names
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "model"  # not the local path the run recorded
    assert json.loads((pushed_run / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] != "model"
    card = (out / "README.md").read_text(encoding="utf-8")
    assert front_matter(card)["library_name"] == "peft"
    assert "PeftModel.from_pretrained(base, repo, subfolder=subfolder)" in card
    assert "Model Card for Model ID" not in card  # PEFT's placeholder card stays behind


def test_an_exported_gguf_and_its_modelfiles_travel_with_merged_weights_only(run_copy, cli):
    export = run_copy / "export"
    export.mkdir()
    (export / "train-q8_0.gguf").write_bytes(b"GGUF" + bytes(64))
    (export / "train-q8_0.parity.json").write_text(json.dumps({
        "passed": True, "backends": {"transformers": {"top1_agreement": 0.995, "ppl_ratio": 1.0012,
                                                      "mean_abs_dlogprob": 0.0031, "passed": True}},
        "prompt_tokens": {"identical": True, "checked": 4}}))
    for slug in ("ada-bell", "ben-ortiz"):
        (export / f"Modelfile.{slug}").write_text(f"FROM ./train-q8_0.gguf\n# {slug}\n")
    result = cli("push", str(run_copy), "--repo", REPO, "--dry-run")
    assert result.code == 0, result.stderr
    push = run_copy / "push"
    assert {"gguf/train-q8_0.gguf", "gguf/train-q8_0.parity.json", "gguf/Modelfile.ada-bell",
            "gguf/Modelfile.ben-ortiz", "model.safetensors"} <= folder_names(push)
    assert (push / "gguf" / "Modelfile.ada-bell").read_text() == (export / "Modelfile.ada-bell").read_text()
    card = (push / "README.md").read_text()
    assert "gguf" in front_matter(card)["tags"]
    assert "cd lineup/train/gguf\nollama create ada-bell -f Modelfile.ada-bell\nollama run ada-bell" in card
    assert "- `train-q8_0.gguf`: transformers: top-1 99.5%, ppl ratio 1.0012" in card

    adapter = cli("push", str(run_copy), "--repo", REPO, "--dry-run", "--adapter")
    assert adapter.code == 0, adapter.stderr
    assert not [n for n in folder_names(push) if n.startswith("gguf/")]
    assert "--adapter: the GGUF in export/ is not uploaded" in adapter.stderr


def test_dry_run_replaces_its_own_folder_and_merges_first(run_copy, cli):
    shutil.rmtree(run_copy / "merged")
    first = cli("push", str(run_copy), "--repo", REPO, "--dry-run")
    assert first.code == 0, first.stderr
    assert (run_copy / "merged" / "model.safetensors").is_file(), "merged weights are made when missing"
    assert "model.safetensors" in folder_names(run_copy / "push")
    (run_copy / "push" / "stale.txt").write_text("from an earlier dry run")
    again = cli("push", str(run_copy), "--repo", REPO, "--dry-run", "--subfolder", "renamed")
    assert again.code == 0, again.stderr
    assert "stale.txt" not in folder_names(run_copy / "push")
    assert "# renamed:" in (run_copy / "push" / "README.md").read_text()
    assert not [p for p in run_copy.iterdir() if p.name.startswith(".")], "temporary folders left in the run"


def test_the_pushed_tokenizer_carries_the_training_chat_template(run_copy, cli):
    """A run whose format used another template than the tokenizer's (e.g. the default ChatML for a model without
    one): the uploaded tokenizer gets the training template, and the run's own files stay as they were."""
    from transformers import AutoTokenizer

    from personaforge.prompting import DEFAULT_CHAT_TEMPLATE

    fmt = json.loads((run_copy / "prompt_format.json").read_text())
    assert fmt["chat_template"] != DEFAULT_CHAT_TEMPLATE
    (run_copy / "prompt_format.json").write_text(json.dumps({**fmt, "chat_template": DEFAULT_CHAT_TEMPLATE}))
    merged_before = files_under(run_copy / "merged")
    result = cli("push", str(run_copy), "--repo", REPO, "--dry-run")
    assert result.code == 0, result.stderr
    assert AutoTokenizer.from_pretrained(run_copy / "push").chat_template == DEFAULT_CHAT_TEMPLATE
    assert json.loads((run_copy / "push" / "prompt_format.json").read_text())["chat_template"] == DEFAULT_CHAT_TEMPLATE
    assert AutoTokenizer.from_pretrained(run_copy / "merged").chat_template == fmt["chat_template"]
    assert files_under(run_copy / "merged") == merged_before


def test_dry_run_refuses_to_replace_a_folder_it_did_not_write(pushed_run, cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = cli("push", str(pushed_run), "--repo", REPO, "--dry-run", "--out", str(out))
    assert "--out" in one_error(result) and "did not write" in result.stderr
    assert folder_names(out) == {"notes.txt"}


# ------------------------------------------------------------------------------------------ consent
def test_missing_consent_stops_a_push_before_anything_happens(run_copy, cli, monkeypatch):
    hub = FakeHub(monkeypatch)
    before = files_under(run_copy)
    result = cli("push", str(run_copy), "--repo", REPO, token=FAKE_TOKEN)
    message = one_error(result)
    assert "Ada Bell, Ben Ortiz" in message and "--confirm-rights" in message and "consent" in message
    assert hub.calls == [] and files_under(run_copy) == before


def test_confirm_rights_allows_the_push_and_the_card_says_so(run_copy, cli, monkeypatch):
    hub = FakeHub(monkeypatch)
    result = cli("push", str(run_copy), "--repo", REPO, "--confirm-rights", token=FAKE_TOKEN)
    assert result.code == 0, result.stderr
    card = hub.uploaded["README.md"].decode()
    assert "The publisher confirmed with `--confirm-rights`" in card and "CONSENT NOT RECORDED" not in card


def test_recorded_consent_needs_no_confirmation(run_copy, cli, monkeypatch):
    with_consent(run_copy, consent="Ada and Ben agreed in writing on 2026-01-05.", source="Harbour interview, 2025")
    hub = FakeHub(monkeypatch)
    result = cli("push", str(run_copy), "--repo", REPO, token=FAKE_TOKEN)
    assert result.code == 0, result.stderr
    card = hub.uploaded["README.md"].decode()
    assert "| Ada Bell | Ada and Ben agreed in writing on 2026-01-05. | Harbour interview, 2025 |" in card
    assert "Consent is recorded for every persona." in card


# ------------------------------------------------------------------------------------------ upload
def test_upload_creates_the_repo_and_uploads_the_folder_into_its_subfolder(run_copy, cli, monkeypatch):
    with_consent(run_copy)
    hub = FakeHub(monkeypatch)
    result = cli("push", str(run_copy), "--repo", REPO, "--subfolder", "tiny-llama", token=FAKE_TOKEN)
    assert result.code == 0, result.stderr
    assert hub.names() == ["repo_info", "create_repo", "upload_folder", "upload_file"]
    create = hub.call("create_repo")
    assert create["repo_id"] == REPO and create["private"] is True and create["exist_ok"] is True
    upload = hub.call("upload_folder")
    assert upload["repo_id"] == REPO and upload["path_in_repo"] == "tiny-llama"
    assert all(kwargs.get("token") == FAKE_TOKEN for _, kwargs in hub.calls)
    assert {"README.md", "model.safetensors", "config.json", "tokenizer.json", "prompt_format.json"} <= set(hub.uploaded)
    assert hub.uploaded["model.safetensors"] == (run_copy / "merged" / "model.safetensors").read_bytes()
    assert front_matter(hub.uploaded["README.md"].decode())["library_name"] == "transformers"
    assert not Path(upload["folder_path"]).exists(), "the staging folder must be removed after the upload"
    # The repo's root README.md indexes the lineup (one subfolder per model).
    index = hub.call("upload_file")
    assert index["path_in_repo"] == "README.md" and index["repo_id"] == REPO
    root = index["path_or_fileobj"].decode()
    assert "[model card](tiny-llama/README.md)" in root and "personaforge" in front_matter(root)["tags"]
    assert result.stdout.splitlines()[-1] == f"pushed: https://huggingface.co/{REPO}/tree/main/tiny-llama"


def test_public_flag_and_an_existing_lineup(run_copy, cli, monkeypatch):
    with_consent(run_copy)
    earlier = "---\nbase_model:\n- org/other\ntags:\n- personaforge\n---\n\n# lineup\n\n<!-- personaforge:lineup -->\n"
    hub = FakeHub(monkeypatch, existing=Info(private=False, files=["README.md", "other_model/README.md",
                                                                    "other_model/model.safetensors"]),
                  root_readme=earlier)
    result = cli("push", str(run_copy), "--repo", REPO, "--public", "--adapter", token=FAKE_TOKEN)
    assert result.code == 0, result.stderr
    assert hub.call("create_repo")["private"] is False
    assert "adapter_model.safetensors" in hub.uploaded and "model.safetensors" not in hub.uploaded
    root = hub.call("upload_file")["path_or_fileobj"].decode()
    assert "(other_model/README.md)" in root and "(train/README.md)" in root
    assert front_matter(root)["base_model"] == ["org/other"]  # this run's base is local: nothing to add


def test_a_root_readme_someone_else_wrote_is_left_alone(run_copy, cli, monkeypatch):
    with_consent(run_copy)
    hub = FakeHub(monkeypatch, existing=Info(private=True, files=["README.md"]), root_readme="# My own page\n")
    result = cli("push", str(run_copy), "--repo", REPO, token=FAKE_TOKEN)
    assert result.code == 0, result.stderr
    assert "upload_file" not in hub.names() and "root README.md was left as it is" in result.stderr


def test_default_private_push_into_a_public_repo_is_refused(run_copy, cli, monkeypatch):
    with_consent(run_copy)
    hub = FakeHub(monkeypatch, existing=Info(private=False, files=[]))
    message = one_error(cli("push", str(run_copy), "--repo", REPO, token=FAKE_TOKEN))
    assert "public" in message and "--public" in message
    assert hub.names() == ["repo_info"]


@pytest.mark.parametrize("failure, needle", [
    (ConnectionError("Failed to establish a new connection: [Errno -3] Temporary failure in name resolution"),
     "cannot be reached"),
    ("401", "rejected the token (HTTP 401)"),
])
def test_hub_failures_are_one_line_and_never_show_the_token(run_copy, cli, monkeypatch, failure, needle):
    from huggingface_hub.errors import HfHubHTTPError

    with_consent(run_copy)
    if failure == "401":  # a server message that (absurdly) echoes the token must not reach the terminal
        failure = HfHubHTTPError(f"401 Unauthorized: invalid token {FAKE_TOKEN}", response=_response(401))
    hub = FakeHub(monkeypatch, fail_upload=failure)
    result = cli("push", str(run_copy), "--repo", REPO, token=FAKE_TOKEN)
    assert needle in one_error(result)
    assert FAKE_TOKEN not in result.stdout + result.stderr
    assert not Path(hub.call("upload_folder")["folder_path"]).exists()


# ------------------------------------------------------------------------------------------ token
def test_missing_token_is_a_clear_error_before_anything_is_written(run_copy, tmp_path):
    with_consent(run_copy)
    before = files_under(run_copy)
    result = run_persona("push", str(run_copy), "--repo", REPO,
                         env={"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_TOKEN_PATH": str(tmp_path / "none"),
                              "HF_HUB_OFFLINE": "1"})
    message = assert_user_error(result, "HF_TOKEN", "hf auth login", "--dry-run")
    assert message.count("error:") == 1
    assert files_under(run_copy) == before


def test_the_token_is_never_printed_or_written(run_copy, cli, monkeypatch, tmp_path):
    with_consent(run_copy)
    # A real process with the token in its environment: dry run, output and every file it wrote.
    out = tmp_path / "dry"
    result = run_persona("push", str(run_copy), "--repo", REPO, "--dry-run", "--out", str(out),
                         env={"HF_TOKEN": FAKE_TOKEN})
    assert result.returncode == 0, result.stderr
    # In this process: the upload path, through the patched client.
    hub = FakeHub(monkeypatch)
    pushed = cli("push", str(run_copy), "--repo", REPO, token=FAKE_TOKEN)
    assert pushed.code == 0, pushed.stderr
    assert hub.call("upload_folder")["token"] == FAKE_TOKEN  # it was there to leak
    written = files_under(out, run_copy)
    written.update({f"uploaded:{k}": v for k, v in hub.uploaded.items()})
    written["uploaded:root README.md"] = hub.call("upload_file")["path_or_fileobj"]
    assert len(written) > 10
    leaks = [name for name, data in written.items() if FAKE_TOKEN.encode() in data]
    assert leaks == []
    for text in (result.stdout, result.stderr, pushed.stdout, pushed.stderr):
        assert FAKE_TOKEN not in text


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("args, needle", [
    (["--repo", "no-owner"], "--repo 'no-owner': give OWNER/NAME"),
    (["--repo", "me/lineup", "--subfolder", "../up"], "--subfolder '../up'"),
    (["--repo", "me/lineup", "--out", "somewhere"], "--out is for --dry-run only"),
])
def test_bad_flags_are_one_line_errors(pushed_run, cli, args, needle):
    assert needle in one_error(cli("push", str(pushed_run), *args, "--confirm-rights", token=FAKE_TOKEN))


def test_an_unfinished_run_cannot_be_pushed(run_copy, cli):
    status = json.loads((run_copy / "status.json").read_text())
    (run_copy / "status.json").write_text(json.dumps({**status, "status": "failed"}))
    message = one_error(cli("push", str(run_copy), "--repo", REPO, "--dry-run"))
    assert "is failed; only a finished run can be pushed" in message
    assert not (run_copy / "push").exists()
