"""One real all-MiniLM-L6-v2 embedder for the whole test session, loaded with the network forbidden."""

from __future__ import annotations

import socket

import pytest

from personaforge.evaluate.metrics import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    def refuse(*_args, **_kwargs):
        raise AssertionError("the embedding model tried to use the network")

    # Loading happens on first use; forbid sockets around it to prove the packaged model loads offline.
    original = socket.socket.connect
    socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        model = Embedder()
        model.embed(["warm-up sentence"])
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]
    return model
