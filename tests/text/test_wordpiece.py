"""WordPieceTokenizer (graphnet/text/wordpiece.py) on the small tokenizer.json of bert_fakes.py."""

import json

import numpy as np
import pytest
from bert_fakes import WORDS, tokenizer_json

import graphnet as gn
from graphnet import serialization

pytest.importorskip("tokenizers")


@pytest.fixture
def path(tmp_path):
    file = tmp_path / "tokenizer.json"
    file.write_text(tokenizer_json(), encoding="utf-8")
    return file


def test_batches_pad_to_the_longest_text_not_the_files_fixed_length(path):
    tok = gn.text.WordPieceTokenizer.from_file(path, max_length=16)
    batch = tok.encode_batch(["A fresh take!", "Films"])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(v.dtype == np.int64 and v.shape == (2, 6) for v in batch.values())
    assert batch["input_ids"].tolist() == [[2, 4, 5, 6, 16, 3], [2, 14, 15, 3, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1, 1, 1, 1, 0, 0]]
    assert batch["token_type_ids"].sum() == 0
    assert tok.encode("two hours").tolist() == [2, 7, 8, 3]
    assert tok.decode(batch["input_ids"][1]) == "films"
    assert tok.vocab_size == len(WORDS)


def test_long_texts_are_cut_with_a_warning(path):
    tok = gn.text.WordPieceTokenizer.from_file(path, max_length=5)
    with pytest.warns(UserWarning, match=r"1 text\(s\) \(the first is item 1\) are longer "
                                         "than 5 tokens"):
        batch = tok.encode_batch(["a", "two hours i will never get back"])
    assert batch["input_ids"].shape == (2, 5)
    assert batch["input_ids"][1].tolist() == [2, 7, 8, 9, 3]       # [SEP] kept


def test_the_tokenizer_round_trips_through_its_config(path):
    tok = gn.text.WordPieceTokenizer.from_file(path, max_length=8)
    data = json.loads(json.dumps(serialization.serialize_object(tok)))
    copy = serialization.deserialize_object(data, "tokenizers")
    assert copy.max_length == 8 and copy.pad_id == 0
    texts = ["a fresh take", "never get back ."]
    assert copy.encode_batch(texts)["input_ids"].tolist() == \
        tok.encode_batch(texts)["input_ids"].tolist()


def test_bad_input(path, tmp_path):
    tok = gn.text.WordPieceTokenizer.from_file(path)
    with pytest.raises(ValueError, match="the list of texts is empty"):
        tok.encode_batch([])
    with pytest.raises(TypeError, match=r"item 2 is NoneType \(None\), not a string"):
        tok.encode_batch(["a", "b", None])
    with pytest.raises(TypeError, match="wrap one text in a list"):
        tok.encode_batch("a fresh take")
    with pytest.raises(TypeError, match="takes a string, got list"):
        tok.encode(["a"])
    with pytest.raises(ValueError, match="id 99 is outside the vocabulary"):
        tok.decode([2, 99])
    with pytest.raises(FileNotFoundError, match="no tokenizer file at .*missing.json"):
        gn.text.WordPieceTokenizer.from_file(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"broken.json is not a JSON tokenizer file"):
        gn.text.WordPieceTokenizer.from_file(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"vocab": {}}')
    with pytest.raises(ValueError, match=r"other.json: WordPieceTokenizer: not a tokenizer.json"):
        gn.text.WordPieceTokenizer.from_file(tmp_path / "other.json")
    with pytest.raises(ValueError, match=r"pad_id 500 is not in the vocabulary \(0 to 17\)"):
        gn.text.WordPieceTokenizer.from_file(path, pad_id=500)
