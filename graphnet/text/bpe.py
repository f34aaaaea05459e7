"""BPETokenizer: byte-level byte-pair encoding trained on a corpus (the `tokenizers` package)."""

from __future__ import annotations

import numpy as np

from graphnet.serialization import Configurable


def _tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ImportError("BPETokenizer needs the tokenizers package: pip install tokenizers "
                          "(or pip install graphnet[text])") from None
    return tokenizers


class BPETokenizer(Configurable):
    """GPT-2 style byte-level BPE: any text encodes (no unknown characters),
    merges learned from your corpus.

        tok = gn.text.BPETokenizer.train(texts, vocab_size=4096)
        ids = tok.encode("a fresh take"); tok.decode(ids)

    The whole tokenizer (vocabulary and merges) is its config, so it is saved
    with a model that holds it.
    """

    config_kind = "tokenizers"

    def __init__(self, tokenizer_json: str):
        self.tokenizer_json = tokenizer_json
        self._tokenizer = _tokenizers().Tokenizer.from_str(tokenizer_json)

    @classmethod
    def train(cls, texts, vocab_size: int, min_frequency: int = 2) -> BPETokenizer:
        """Learn merges from `texts` (a string or a list of strings) up to `vocab_size`
        tokens (the 256 bytes included)."""
        tk = _tokenizers()
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise ValueError("BPETokenizer.train needs a string or a non-empty list of strings")
        if vocab_size < 257:
            raise ValueError(f"BPETokenizer.train: vocab_size must be above the 256 byte "
                             f"tokens, got {vocab_size}")
        tokenizer = tk.Tokenizer(tk.models.BPE())
        tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(vocab_size=int(vocab_size), min_frequency=min_frequency,
                                         initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
                                         show_progress=False)
        tokenizer.train_from_iterator(texts, trainer)
        return cls(tokenizer.to_str())

    @property
    def vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size()

    def encode(self, text: str) -> np.ndarray:
        if not isinstance(text, str):
            raise TypeError(f"BPETokenizer.encode takes a string, got {type(text).__name__}")
        return np.array(self._tokenizer.encode(text).ids, np.int64)

    def decode(self, ids) -> str:
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)][0]
            raise ValueError(f"BPETokenizer.decode: id {bad} is outside the vocabulary "
                             f"(0 to {self.vocab_size - 1})")
        return self._tokenizer.decode(ids.tolist())

    def __repr__(self):
        return f"<BPETokenizer {self.vocab_size} tokens>"
