"""Reading and writing models and variables: checkpoints (.npz, .safetensors, folders).

`model.save` / `gn.load_model` and `Session.save` / `Session.restore` are
built on `gn.io.checkpoint.write` and `read`. `gn.io.onnx` exports and imports ONNX.
"""

from graphnet.io import checkpoint, onnx
from graphnet.io.checkpoint import CheckpointError

__all__ = ["CheckpointError", "checkpoint", "onnx"]
