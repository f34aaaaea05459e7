"""Ready-made architectures (GPT, BERT) as Models configured like layers.

A functional Model's config is its graph: which layer feeds which. A
ready-made architecture's graph follows from a few numbers (vocabulary,
width, depth), so its config is its constructor's arguments, as a layer's
is, and loading builds it again from them. A `tokenizer` argument is saved
as a registered object of its own (`gn.serialization`), never as code.
"""

from __future__ import annotations

from graphnet.layers.base import Layer
from graphnet.models.model import Model
from graphnet.serialization import deserialize_object, serialize_object


class Architecture(Model):
    """A Model whose config is its constructor's arguments."""

    def get_config(self) -> dict:
        config = Layer.get_config(self)
        if getattr(self, "tokenizer", None) is not None and "tokenizer" in config:
            config["tokenizer"] = serialize_object(self.tokenizer, "the tokenizer")
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if isinstance(config.get("tokenizer"), dict):
            config["tokenizer"] = deserialize_object(config["tokenizer"], "tokenizers")
        return Layer.from_config.__func__(cls, config)
