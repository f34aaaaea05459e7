"""Test-wide settings: deterministic hypothesis under CI, fresh node names per test,
fused kernels on the NumPy backend."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import graphnet as gn

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=60)
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
