"""Fixtures shared by the compiler tests."""

import os

import pytest


@pytest.fixture(scope="module")
def numba_cache(tmp_path_factory):
    """Numba installed, and its kernels in a temporary cache unless GRAPHNET_CACHE is set."""
    pytest.importorskip("numba")
    if "GRAPHNET_CACHE" in os.environ:
        yield
        return
    os.environ["GRAPHNET_CACHE"] = str(tmp_path_factory.mktemp("graphnet-cache"))
    yield
    del os.environ["GRAPHNET_CACHE"]
