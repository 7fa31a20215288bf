"""pytest fixtures for omni and its plugins. Enable with ``pytest_plugins = ["omni.testing.fixtures"]``.

Hermetic by construction: before collection, ``OMNI_CACHE_DIR`` is pointed at a private folder (a fresh
temporary one, or ``$OMNI_TEST_CACHE_DIR`` to reuse built test models across runs), so no test and no
collection-time registry ever reads the user's ``~/.cache/omni`` (calibrations, local proofs, models).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile

import pytest

_CREATED: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    reuse = os.environ.get("OMNI_TEST_CACHE_DIR")
    if reuse:
        os.environ["OMNI_CACHE_DIR"] = reuse
    else:
        folder = tempfile.mkdtemp(prefix="omni-test-cache-")
        _CREATED.append(folder)
        os.environ["OMNI_CACHE_DIR"] = folder
    os.environ.pop("OMNI_TEACACHE_DIR", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _CREATED:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _omni_single_thread():
    """One torch thread (two threads on a busy 2-core box can be many times slower)."""
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
