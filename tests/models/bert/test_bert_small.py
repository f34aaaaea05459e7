"""gn.models.bert on tiny folders made here: loading rules, errors, saving, a Hub id.

The real model's equivalence with transformers is in test_bert.py; here a
two-layer BERT with random weights is checked against a float64 NumPy BERT.
"""

import json
import sys
import types

import numpy as np
import pytest
from bert_fakes import CONFIG, checkpoint, numpy_bert, write_folder

import graphnet as gn
from graphnet.io import CheckpointError
from graphnet.models import bert

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
TEXTS = ["A fresh take!", "two hours I will never get back.", "films"]


@pytest.fixture
def folder(tmp_path):
    return write_folder(tmp_path / "tiny")


def test_a_small_folder_matches_a_numpy_bert(folder):
    enc = bert.from_pretrained(folder)
    assert enc.max_length == 16 and enc.pooler is not None
    batch = enc.tokenize(TEXTS)
    assert batch["input_ids"].shape == (3, 10)      # the longest text, not the file's 128
    hidden = enc.hidden_states(batch["input_ids"], batch["attention_mask"])
    expected = numpy_bert(checkpoint(CONFIG), CONFIG, batch["input_ids"],
                          batch["attention_mask"])
    np.testing.assert_allclose(hidden, expected, rtol=0, atol=2e-5)
    mask = batch["attention_mask"][..., None]
    mean = (expected * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=2),
                               mean / np.linalg.norm(mean, axis=1, keepdims=True),
                               rtol=0, atol=1e-5)


def test_strict_loading_names_unexpected_and_missing_tensors(tmp_path):
    with_head = {f"bert.{k}": v for k, v in checkpoint(CONFIG).items()}
    with_head["classifier.weight"] = np.zeros((2, 8), np.float32)    # a task model's folder
    folder = write_folder(tmp_path / "head", tensors=with_head)
    with pytest.raises(CheckpointError, match=r"model.safetensors: 1 unexpected "
                                              r"tensor\(s\): 'classifier.weight'; pass strict"):
        bert.from_pretrained(folder)
    assert bert.from_pretrained(folder, strict=False).count_params() > 0
    folder = write_folder(tmp_path / "no_pooler", pooler=False)
    with pytest.raises(CheckpointError, match="'pooler.dense.weight' is missing; pass "
                                              "strict=False"):
        bert.from_pretrained(folder)
    enc = bert.from_pretrained(folder, strict=False)
    assert enc.pooler is None
    with pytest.raises(ValueError, match="has no pooler"):
        enc.pooled(enc.outputs)


def test_bad_folders_name_the_file(tmp_path):
    folder = write_folder(tmp_path / "bad")
    (folder / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="model.safetensors is not a readable "
                                              "safetensors file"):
        bert.from_pretrained(folder)
    folder = write_folder(tmp_path / "bad")
    (folder / "config.json").write_text("{'vocab_size': 20")
    with pytest.raises(ValueError, match="config.json is not a JSON file"):
        bert.from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ValueError, match="config.json is not a model config"):
        bert.from_pretrained(folder)
    for key, value, message in [("hidden_act", "swish", "hidden_act 'swish' is not supported"),
                                ("position_embedding_type", "relative_key",
                                 "position_embedding_type 'relative_key' is not supported"),
                                ("num_attention_heads", 3, "hidden_size 8 is not a multiple"),
                                ("vocab_size", 10, "tokenizer.json has 18 tokens, more than "
                                                   "config.json's vocab_size 10")]:
        (folder / "config.json").write_text(json.dumps({**CONFIG, key: value}))
        with pytest.raises(ValueError, match=message):
            bert.from_pretrained(folder)


def test_bad_input_to_the_running_encoder(folder):
    enc = bert.from_pretrained(folder)
    with pytest.raises(ValueError, match="input_ids holds 20, outside 0 to 19"):
        enc.hidden_states(np.array([[2, 20, 3]]))
    with pytest.raises(ValueError, match="input_ids holds -1, outside"):
        enc.hidden_states(np.array([[2, 3, -1]]))
    with pytest.raises(ValueError, match=r"attention_mask has shape \(1, 2\), expected "
                                         r"input_ids' shape \(1, 3\)"):
        enc.hidden_states(np.array([[2, 4, 3]]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="token_type_ids holds 2, outside 0 to 1"):
        enc.hidden_states(np.array([[2, 4, 3]]), None, np.array([[0, 2, 0]]))
    with pytest.raises(ValueError, match="17 tokens exceed the model's 16 positions"):
        enc.hidden_states(np.full((1, 17), 4))
    with pytest.raises(ValueError, match="must be"):
        enc.hidden_states(np.array([2, 4, 3]))
    with pytest.raises(ValueError, match="batch_size must be a whole number >= 1"):
        enc.encode(TEXTS, batch_size=0)
    with pytest.raises(TypeError, match="tokenize: item 0 is bytes"):
        enc.tokenize([b"bytes"])
    with pytest.warns(UserWarning, match="longer than 16 tokens"):
        assert enc.encode(["a " * 40]).shape == (1, 8)
    with pytest.raises(ValueError, match="has no tokenizer"):
        bert.BertEncoder(20, 8, 1, 2, 16, max_position_embeddings=16).tokenize(["a"])


def test_freezing_all_some_or_none_of_the_encoder(folder):
    enc = bert.from_pretrained(folder, dropout=0.1)
    model = bert.Classifier(enc, num_classes=2)
    head = set(model.head.weights)
    enc.trainable = False
    assert set(model.trainable_weights) == head
    bert.unfreeze_top(enc, 1)
    assert set(model.trainable_weights) == head | set(enc.blocks[1].weights) | \
        set(enc.pooler.weights)
    bert.unfreeze_top(enc, 0)
    assert set(model.trainable_weights) == head
    enc.trainable = True
    assert set(model.trainable_weights) == set(model.weights)
    model.compile(optimizer=gn.optim.AdamW(1e-3), loss="sparse_categorical_crossentropy")
    ids = enc.tokenize(TEXTS)["input_ids"]
    first = enc.session.get(enc.blocks[0].query.kernel)
    loss, = np.atleast_1d(model.train_on_batch(ids, np.array([1, 0, 1])))[:1]
    assert np.isfinite(loss)
    assert not np.array_equal(enc.session.get(enc.blocks[0].query.kernel), first)


def test_a_fine_tuned_classifier_saves_and_loads_with_its_tokenizer(folder, tmp_path):
    enc = bert.from_pretrained(folder)
    model = bert.Classifier(enc, num_classes=3)
    ids = enc.tokenize(TEXTS)["input_ids"]
    before = model.predict(ids)
    model.save(tmp_path / "sentiment.safetensors")
    loaded = gn.load_model(tmp_path / "sentiment.safetensors")
    assert type(loaded) is bert.Classifier
    np.testing.assert_array_equal(loaded.encoder.tokenize(TEXTS)["input_ids"], ids)
    np.testing.assert_allclose(loaded.predict(ids), before, rtol=0, atol=1e-6)


def test_a_hub_id_downloads_through_huggingface_hub(folder, monkeypatch, tmp_path):
    calls = []

    def snapshot_download(repo_id, cache_dir, allow_patterns):
        calls.append((repo_id, cache_dir, allow_patterns))
        return str(folder)

    monkeypatch.setenv("GRAPHNET_CACHE", str(tmp_path / "cache"))
    fake = types.SimpleNamespace(snapshot_download=snapshot_download)
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    enc = bert.from_pretrained("someone/tiny-bert")
    assert enc.config.hidden_size == 8
    assert calls == [("someone/tiny-bert", str(tmp_path / "cache" / "hub"),
                      ["config.json", "model.safetensors", "tokenizer.json",
                       "sentence_bert_config.json"])]

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setitem(sys.modules, "huggingface_hub",
                        types.SimpleNamespace(snapshot_download=offline))
    with pytest.raises(FileNotFoundError, match=r"someone/tiny-bert is not a folder here, and "
                                                r"downloading it .* failed \(ConnectionError"):
        bert.from_pretrained("someone/tiny-bert")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)      # not installed
    with pytest.raises(FileNotFoundError, match="pip install huggingface_hub"):
        bert.from_pretrained("someone/tiny-bert")


def test_encode_pads_batches_to_a_few_lengths():
    padded = [bert._bucket(n, 512) for n in (3, 12, 13, 32, 33, 64, 65, 250, 511, 512)]
    assert padded == [4, 12, 16, 32, 40, 64, 80, 256, 512, 512]
    assert bert._bucket(13, 14) == 14 and len({bert._bucket(n, 256) for n in range(1, 257)}) == 24
