"""Reading and writing models and variables: checkpoints (.npz, .safetensors, folders).

`model.save` / `gn.load_model` and `Session.save` / `Session.restore` are
built on `gn.io.checkpoint.write` and `read`.
"""

from graphnet.io import checkpoint
from graphnet.io.checkpoint import CheckpointError

__all__ = ["CheckpointError", "checkpoint"]
