"""What export and import share: the error type, opset ranges, dtype codes.

Nothing here imports `onnx`: graphnet must import without it.
"""

from __future__ import annotations

import numpy as np

from graphnet.errors import GraphnetError

#: Opsets `export` writes (LayerNormalization needs 17).
EXPORT_OPSETS = range(17, 22)
#: Opsets `load` reads (13 moved Squeeze, Unsqueeze and ReduceSum axes to inputs).
IMPORT_OPSETS = range(13, 23)
#: Operators that carry subgraphs: a static graph cannot hold them.
CONTROL_FLOW = ("If", "Loop", "Scan", "SequenceMap")
#: Metadata key listing the initializers that are not trainable (batch norm statistics).
FROZEN_KEY = "graphnet.non_trainable"


class OnnxError(GraphnetError, ValueError):
    """An ONNX file that cannot be written or read: bad file, opset, operator or graph."""


def need_onnx(what: str):
    """The `onnx` module, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError(f"{what} needs the onnx package: pip install 'graphnet[onnx]' "
                          "(or pip install onnx)") from None
    return onnx


def onnx_dtype(dtype) -> int:
    """The TensorProto element type of a NumPy dtype."""
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def numpy_dtype(code: int) -> np.dtype:
    """The NumPy dtype of a TensorProto element type."""
    from onnx import helper
    return np.dtype(helper.tensor_dtype_to_np_dtype(code))
