"""Neural-network ops: `gn.nn.sparse_softmax_cross_entropy(logits, labels)`, ..."""

from graphnet.nn.cross_entropy import softmax_cross_entropy, sparse_softmax_cross_entropy

__all__ = ["softmax_cross_entropy", "sparse_softmax_cross_entropy"]
