"""Models: the functional `Model`, `Sequential`, and whole-model checkpoints.

    model = gn.Sequential([...]); model.compile(...); model.fit(x, y)
    model.save("run.safetensors"); model = gn.load_model("run.safetensors")
"""

from graphnet.models import bert, gpt
from graphnet.models.model import Input, Model
from graphnet.models.saving import load_model
from graphnet.models.sequential import Sequential

__all__ = ["Input", "Model", "Sequential", "bert", "gpt", "load_model"]
