"""Helpers of the ONNX tests: optional packages, ONNX Runtime, comparisons.

onnx and onnxruntime are the optional extra `graphnet[onnx]`: without them
these tests skip with a reason, except under CI (CI=true), where they must run.
"""

import importlib
import os

import numpy as np
import pytest

#: Agreement asked of every comparison with ONNX Runtime (float32).
RTOL = ATOL = 1e-5


def require(module: str, why: str = "the graphnet[onnx] extra"):
    """Import `module`, or skip (outside CI) saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"needs {module} ({why}: pip install 'graphnet[onnx]')")


onnx = require("onnx")
ort = require("onnxruntime")


def run_ort(path_or_proto, feeds: dict) -> list:
    """ONNX Runtime's outputs for `feeds` (input name -> array)."""
    source = path_or_proto if isinstance(path_or_proto, (str, os.PathLike)) \
        else path_or_proto.SerializeToString()
    session = ort.InferenceSession(str(source) if not isinstance(source, bytes) else source,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def assert_close(got, want, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)
