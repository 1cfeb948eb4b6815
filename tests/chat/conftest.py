"""A tiny run trained through the real CLI, and its model loaded once in-process, shared by the chat tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.conftest import REPO, run_persona
from tests.train.conftest import tiny_dataset, tiny_model, write_config  # noqa: F401 - shared session fixtures

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="session")
def chat_run(tmp_path_factory, tiny_model, tiny_dataset) -> Path:  # noqa: F811 - the imported fixtures
    folder = tmp_path_factory.mktemp("chatrun")
    config = write_config(folder, tiny_model, tiny_dataset, train={"max_steps": 2},
                          eval={"max_new_tokens": 8, "temperature": 0.0})
    result = run_persona("train", str(config), env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    return REPO / [l for l in result.stdout.splitlines() if l.startswith("run: ")][-1].removeprefix("run: ")


@pytest.fixture(scope="session")
def session(chat_run):
    """The run's ChatModel, loaded once (adapter applied), on one thread like the CLI subprocesses."""
    from personaforge.chat import ChatRun
    from personaforge.train.run import Run

    torch.set_num_threads(1)
    return ChatRun.open(Run(chat_run)).load(lambda message: None)


class Server:
    """persona serve's app on a free loopback port, from a thread: ``url`` (http://127.0.0.1:PORT) and the batcher."""

    def __init__(self, session, api_key: str | None = None, host: str = "127.0.0.1", max_batch: int = 16) -> None:
        from personaforge.serve import PersonaAPI
        from personaforge.serving.app import ServeSecurity, create_app
        from personaforge.serving.batcher import Batcher
        from personaforge.studio.app import Background

        self.security = ServeSecurity(host=host, always=api_key is not None)
        if api_key:
            self.security.token = api_key
        self.batcher = Batcher(session, max_batch=max_batch)
        self.background = Background(create_app(PersonaAPI(session), self.batcher, self.security))
        self.url = ""

    def __enter__(self) -> "Server":
        self.url = self.background.__enter__().split("?")[0].rstrip("/")
        return self

    def __exit__(self, *exc) -> None:
        self.background.__exit__(*exc)
        self.batcher.close()


@pytest.fixture(scope="module")
def server(session):
    with Server(session) as running:
        yield running
