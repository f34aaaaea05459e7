"""Tokenizers: text to token ids and back.

    tok = gn.text.CharTokenizer.fit(text)          # one id per character
    tok = gn.text.BPETokenizer.train(texts, 4096)  # byte-level BPE (tokenizers package)
    tok = gn.text.WordPieceTokenizer.from_file("model/tokenizer.json")  # a pretrained one
"""

from graphnet.text.bpe import BPETokenizer
from graphnet.text.char import CharTokenizer
from graphnet.text.wordpiece import WordPieceTokenizer

__all__ = ["BPETokenizer", "CharTokenizer", "WordPieceTokenizer"]
