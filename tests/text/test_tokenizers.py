"""CharTokenizer and BPETokenizer (graphnet/text/)."""

import json

import numpy as np
import pytest

import graphnet as gn
from graphnet import serialization

TEXT = "Une critique fraîche: 10/10 — 映画 🎬!\nA rotten one, too."


def _round_trip(tokenizer):
    data = json.loads(json.dumps(serialization.serialize_object(tokenizer)))
    return serialization.deserialize_object(data, "tokenizers")


def test_char_tokenizer_round_trips_any_text_it_was_fitted_on():
    tok = gn.text.CharTokenizer.fit(TEXT)
    ids = tok.encode(TEXT)
    assert ids.dtype == np.int64 and len(ids) == len(TEXT)
    assert tok.decode(ids) == TEXT
    assert tok.vocab_size == len(set(TEXT))
    assert list(tok.encode("".join(sorted(set(TEXT))))) == list(range(tok.vocab_size))
    assert _round_trip(tok).encode(TEXT).tolist() == ids.tolist()


def test_unknown_characters_error_or_map_to_a_reserved_id():
    tok = gn.text.CharTokenizer.fit("abc")
    with pytest.raises(ValueError, match=r"character 'z' \(U\+007A\) at position 2 was never "
                                         r"seen.*unknown='reserve'"):
        tok.encode("abzz")
    lenient = gn.text.CharTokenizer.fit("abc", unknown="reserve")
    assert lenient.vocab_size == 4
    assert lenient.encode("azb").tolist() == [0, 3, 1]
    assert lenient.decode([0, 3]) == "a\ufffd"
    with pytest.raises(ValueError, match="id 4 is outside the vocabulary"):
        lenient.decode([4])
    with pytest.raises(ValueError, match="unknown must be one of"):
        gn.text.CharTokenizer("ab", unknown="drop")
    with pytest.raises(ValueError, match="non-empty string"):
        gn.text.CharTokenizer.fit("")


def test_bpe_tokenizer_learns_merges_and_round_trips_bytes():
    pytest.importorskip("tokenizers")
    corpus = ["a fresh take on an old tale", "the film is fresh and funny"] * 30
    tok = gn.text.BPETokenizer.train(corpus, vocab_size=300)
    assert 256 < tok.vocab_size <= 300
    ids = tok.encode("a fresh film")
    assert len(ids) < len("a fresh film")           # merges learned from the corpus
    assert tok.decode(ids) == "a fresh film"
    assert tok.decode(tok.encode(TEXT)) == TEXT     # bytes: nothing is unknown
    assert _round_trip(tok).encode(TEXT).tolist() == tok.encode(TEXT).tolist()
    with pytest.raises(ValueError, match="vocab_size must be above the 256"):
        gn.text.BPETokenizer.train(corpus, 100)
