"""Fixtures for data-set tests: an isolated cache, no internet, a local HTTP mirror.

Every test here runs with GRAPHNET_CACHE in a temporary directory,
GRAPHNET_DATA unset and MNIST's mirrors pointing at a closed local port, so
nothing reads the user's cache or reaches the real internet. The real
GRAPHNET_DATA is kept in REAL_GRAPHNET_DATA for the test on the real file.
"""

import os

import pytest
from mnist_fakes import Mirror, refused_url

from graphnet.datasets import mnist

REAL_GRAPHNET_DATA = os.environ.get("GRAPHNET_DATA")


@pytest.fixture
def mirror():
    """A running local mirror, stopped after the test."""
    server = Mirror().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """A private cache, no GRAPHNET_DATA, and mirrors that refuse connections."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GRAPHNET_CACHE", str(cache))
    monkeypatch.delenv("GRAPHNET_DATA", raising=False)
    monkeypatch.setattr(mnist, "URLS", (refused_url(), refused_url()))
    return cache


@pytest.fixture
def real_graphnet_data():
    """GRAPHNET_DATA as the test run was started with (the isolation fixture unsets it)."""
    return REAL_GRAPHNET_DATA
