"""Test-wide settings: deterministic hypothesis under CI, fresh node names per test,
fused kernels on the NumPy backend."""

import os
import shutil

import graphviz
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import graphnet as gn
from graphnet.testing import max_examples
from graphnet.viz.render import GraphvizNotFoundError

# HYPOTHESIS_MAX_EXAMPLES=2000 runs every property test thoroughly (graphnet.testing).
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=max_examples(60),
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=max_examples(60),
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Fused kernels run on the NumPy backend unless a test asks for Numba (its
# first compile of each loop takes about a second).
os.environ.setdefault("GRAPHNET_BACKEND", "numpy")


@pytest.fixture(autouse=True)
def _fresh_state():
    """Each test starts with unused names and a seeded global generator."""
    gn.reset_names()
    gn.random.seed(0)
    np.random.seed(0)
    yield


NO_DOT = "needs Graphviz's `dot` (apt-get install graphviz, brew install graphviz)"


def _dot_may_be_missing() -> bool:
    return not os.environ.get("CI") and shutil.which("dot") is None


def pytest_runtest_setup(item):
    """Tests marked needs_dot skip up front where `dot` is missing (outside CI)."""
    if item.get_closest_marker("needs_dot") and _dot_may_be_missing():
        pytest.skip(NO_DOT)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Tests that render with Graphviz's `dot` skip, with the reason, where it is
    not installed, unless CI is set: CI installs it and must run them."""
    try:
        return (yield)
    except (graphviz.ExecutableNotFound, GraphvizNotFoundError):
        if not _dot_may_be_missing():
            raise
        pytest.skip(NO_DOT)
