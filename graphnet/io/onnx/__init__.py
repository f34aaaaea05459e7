"""ONNX export and import: ship a graphnet model to an ONNX runtime, or bring an
ONNX model into graphnet to run, draw, differentiate and fine-tune it.

    gn.io.onnx.export(model, "m.onnx")           # inference graph, dynamic batch axis
    m = gn.io.onnx.load("m.onnx")                # a gn.Model: predict, fit, summary, viz.draw

Needs the `onnx` package (`pip install graphnet[onnx]`); it is imported on
first use, so graphnet itself imports without it.
"""

from __future__ import annotations

from graphnet.io.onnx.common import EXPORT_OPSETS, IMPORT_OPSETS, OnnxError

__all__ = ["EXPORT_OPSETS", "IMPORT_OPSETS", "OnnxError", "export", "load"]


def export(model_or_fetches, path, feeds=None, opset: int | None = None, session=None):
    """Write the inference graph of a model (or of fetched nodes) to an ONNX file.

    `model_or_fetches` is a gn.Model (its inputs and inference outputs) or a
    node, list or dict of nodes; `feeds` lists the placeholders that become the
    file's inputs (default: every placeholder the fetches need). Variables are
    written as initializers with their current values (the model's Session,
    or `session`); None sizes become symbolic dimensions ("batch" for axis 0).
    `opset` is one of EXPORT_OPSETS (default: the lowest). Returns the path.

        >>> gn.io.onnx.export(model, "mnist.onnx")
    """
    from graphnet.io.onnx.exporter import export_model
    return export_model(model_or_fetches, path, feeds=feeds, opset=opset, session=session)


def load(path, name: str | None = None):
    """Import an ONNX file as a gn.Model whose variables are its initializers.

    Float initializers become trainable variables (batch norm statistics do
    not train), integer ones constants. Every unsupported operator of the file
    is reported in one OnnxError, with counts. See `gn.io.onnx.importer`.

        >>> m = gn.io.onnx.load("resnet.onnx"); m.summary(); m.predict(x)
    """
    from graphnet.io.onnx.importer import load_model
    return load_model(path, name=name)
