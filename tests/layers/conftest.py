"""Fixtures for the layer tests."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    """A fresh generator per test, so values do not depend on which tests ran first."""
    return np.random.default_rng(0)
