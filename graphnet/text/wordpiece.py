"""WordPieceTokenizer: a pretrained model's tokenizer.json, batching texts for an encoder.

    tok = gn.text.WordPieceTokenizer.from_file("model/tokenizer.json", max_length=256)
    batch = tok.encode_batch(["a fresh take", "two hours I will never get back"])
    batch["input_ids"]           # int64 (2, 9): [CLS] ... [SEP], then padding
    tok.decode(batch["input_ids"][0])                    # 'a fresh take'

The file is read by the `tokenizers` package (BERT's WordPiece and whatever
else a Hugging Face tokenizer.json describes). A batch pads to its longest
text, never to the fixed length that a file may carry (all-MiniLM-L6-v2's
pads every batch to 128), and texts longer than `max_length` tokens (special
tokens included) are cut with a warning, never an index error further on.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np

from graphnet.serialization import Configurable


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError("WordPieceTokenizer needs the tokenizers package: pip install "
                          "tokenizers (or pip install graphnet[bert])") from None
    return tokenizers


def check_texts(texts, what: str) -> list:
    """`texts` as a list of strings; an error naming the first bad item otherwise."""
    if isinstance(texts, str):
        raise TypeError(f"{what} takes a list of strings; wrap one text in a list: [text]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{what} takes a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError(f"{what}: the list of texts is empty")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"{what}: item {bad} is {type(texts[bad]).__name__} "
                        f"({texts[bad]!r:.40}), not a string")
    return texts


class WordPieceTokenizer(Configurable):
    """Texts -> padded `input_ids`, `attention_mask`, `token_type_ids` (int64).

    `tokenizer_json` is the text of a tokenizer.json; its own padding and
    truncation settings are replaced by padding with `pad_id` to the longest
    text of each batch and truncation at `max_length`. The whole file is the
    config, so the tokenizer is saved with a model that holds it.
    """

    config_kind = "tokenizers"

    def __init__(self, tokenizer_json: str, max_length: int = 512, pad_id: int = 0):
        if int(max_length) < 2:
            raise ValueError(f"WordPieceTokenizer: max_length must be at least 2 (room for "
                             f"the special tokens), got {max_length!r}")
        self.tokenizer_json = tokenizer_json
        self.max_length, self.pad_id = int(max_length), int(pad_id)
        tk = _tokenizers()
        try:
            tokenizer = tk.Tokenizer.from_str(tokenizer_json)
        except Exception as err:    # the tokenizers package raises plain Exceptions
            raise ValueError(f"WordPieceTokenizer: not a tokenizer.json that the tokenizers "
                             f"package can read ({err})") from None
        pad_token = tokenizer.id_to_token(self.pad_id)
        if pad_token is None:
            raise ValueError(f"WordPieceTokenizer: pad_id {self.pad_id} is not in the "
                             f"vocabulary (0 to {tokenizer.get_vocab_size() - 1})")
        # NOTE: a tokenizer.json may fix padding (all-MiniLM-L6-v2: to 128 tokens)
        # and truncation; both are replaced, or every batch would be 128 long.
        tokenizer.no_padding()
        tokenizer.no_truncation()
        tokenizer.enable_padding(pad_id=self.pad_id, pad_token=pad_token)
        tokenizer.enable_truncation(max_length=self.max_length)
        self._tokenizer = tokenizer

    @classmethod
    def from_file(cls, path, max_length: int = 512, pad_id: int = 0) -> WordPieceTokenizer:
        """The tokenizer of a tokenizer.json file."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
            json.loads(text)
        except FileNotFoundError:
            raise FileNotFoundError(f"WordPieceTokenizer: no tokenizer file at {path}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path} is not a JSON tokenizer file ({err})") from None
        try:
            return cls(text, max_length=max_length, pad_id=pad_id)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode_batch(self, texts, stacklevel: int = 2) -> dict:
        """`input_ids`, `attention_mask`, `token_type_ids` (int64, (n, longest));
        too-long texts are cut with a warning (`stacklevel` as for warnings.warn)."""
        texts = check_texts(texts, "encode_batch")
        encodings = self._tokenizer.encode_batch(texts)
        cut = [i for i, e in enumerate(encodings) if e.overflowing]
        if cut:
            warnings.warn(f"{len(cut)} text(s) (the first is item {cut[0]}) are longer than "
                          f"{self.max_length} tokens and were truncated", stacklevel=stacklevel)
        return {"input_ids": np.array([e.ids for e in encodings], np.int64),
                "attention_mask": np.array([e.attention_mask for e in encodings], np.int64),
                "token_type_ids": np.array([e.type_ids for e in encodings], np.int64)}

    def encode(self, text: str) -> np.ndarray:
        """The token ids of one text, special tokens included, without padding."""
        if not isinstance(text, str):
            raise TypeError(f"WordPieceTokenizer.encode takes a string, got "
                            f"{type(text).__name__}")
        batch = self.encode_batch([text], stacklevel=3)
        return batch["input_ids"][0]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        """The text of token ids (special tokens and padding left out by default)."""
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"WordPieceTokenizer.decode: id {bad} is outside the vocabulary "
                             f"(0 to {self.vocab_size - 1})")
        return self._tokenizer.decode(ids.tolist(), skip_special_tokens=skip_special_tokens)

    def __repr__(self):
        return f"<WordPieceTokenizer {self.vocab_size} tokens, max_length {self.max_length}>"
