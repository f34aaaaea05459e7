"""Fixtures of the ONNX tests."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh generator per test."""
    return np.random.default_rng(0)
