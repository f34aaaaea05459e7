"""CharTokenizer: one token per character, the vocabulary fitted on a text."""

from __future__ import annotations

import numpy as np

from graphnet.serialization import Configurable

UNKNOWN_POLICIES = ("error", "reserve")


class CharTokenizer(Configurable):
    """Characters to ids and back; ids follow the sorted characters of the text.

        tok = gn.text.CharTokenizer.fit(text)
        ids = tok.encode("hello")            # int64 array
        tok.decode(ids) == "hello"

    `unknown` says what happens to characters `fit` never saw: "error" (the
    default) raises an error naming the first one; "reserve" maps them all to
    one extra id, `vocab_size - 1`, which decodes to U+FFFD.
    """

    config_kind = "tokenizers"
    REPLACEMENT = "\ufffd"

    def __init__(self, chars: str, unknown: str = "error"):
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"CharTokenizer: unknown must be one of {UNKNOWN_POLICIES}, "
                             f"got {unknown!r}")
        if len(set(chars)) != len(chars) or not chars:
            raise ValueError("CharTokenizer: chars must be distinct characters, at least one")
        self.chars, self.unknown = "".join(sorted(chars)), unknown
        self._codes = _codepoints(self.chars)              # sorted: searchsorted finds ids
        self._table = np.array(list(self.chars) + [self.REPLACEMENT])

    @classmethod
    def fit(cls, text: str, unknown: str = "error") -> CharTokenizer:
        """The tokenizer of every distinct character of `text`."""
        if not isinstance(text, str) or not text:
            raise ValueError(f"CharTokenizer.fit needs a non-empty string, got {text!r:.40}")
        return cls("".join(sorted(set(text))), unknown=unknown)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + (self.unknown == "reserve")

    def encode(self, text: str) -> np.ndarray:
        """Token ids of `text`, int64."""
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer.encode takes a string, got {type(text).__name__}")
        codes = _codepoints(text)
        ids = np.minimum(np.searchsorted(self._codes, codes), len(self.chars) - 1)
        unseen = self._codes[ids] != codes
        if unseen.any():
            if self.unknown == "error":
                at = int(np.argmax(unseen))
                raise ValueError(
                    f"CharTokenizer: character {text[at]!r} (U+{ord(text[at]):04X}) at position "
                    f"{at} was never seen by fit(); fit on a text that has it, or use "
                    "unknown='reserve' to map unseen characters to one reserved id")
            ids[unseen] = len(self.chars)
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The text of token ids (any int array or list)."""
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            bad = ids[(ids < 0) | (ids >= self.vocab_size)].flat[0]
            raise ValueError(f"CharTokenizer.decode: id {bad} is outside the vocabulary "
                             f"(0 to {self.vocab_size - 1})")
        return "".join(self._table[ids.reshape(-1)].tolist())

    def __repr__(self):
        return f"<CharTokenizer {self.vocab_size} tokens, unknown={self.unknown!r}>"


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), np.uint32).astype(np.int64)
