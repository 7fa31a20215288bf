"""pytest fixtures for omni and its plugins. Enable with ``pytest_plugins = ["omni.testing.fixtures"]``."""

from __future__ import annotations

import os
import socket

import pytest


@pytest.fixture(scope="session", autouse=True)
def _omni_offline_single_thread(tmp_path_factory):
    """Offline, one torch thread, and a private model cache for the session."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("OMNI_CACHE_DIR", str(tmp_path_factory.mktemp("omni-cache")))
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def guard(*args, **kwargs):
        raise AssertionError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket, "create_connection", guard)
    yield


@pytest.fixture(scope="session")
def omni_registry():
    """The registry of the installed plugins (entry points), loaded once."""
    from omni.plugins import Selection, load_registry

    return load_registry(selection=Selection(), strict=False)
