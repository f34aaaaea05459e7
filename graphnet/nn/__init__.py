"""Neural-network ops: `gn.nn.conv2d`, `gn.nn.max_pool2d`, `gn.nn.layer_norm`,
`gn.nn.dropout`, `gn.nn.attention`, `gn.nn.sparse_softmax_cross_entropy`, ..."""

from graphnet.nn.attention import attention, causal_mask
from graphnet.nn.conv import conv2d
from graphnet.nn.cross_entropy import softmax_cross_entropy, sparse_softmax_cross_entropy
from graphnet.nn.dropout import dropout
from graphnet.nn.embedding import embedding_lookup
from graphnet.nn.image import resample
from graphnet.nn.normalization import batch_norm, batch_norm_training, layer_norm, moments
from graphnet.nn.pooling import avg_pool2d, max_pool2d

__all__ = [
    "attention", "avg_pool2d", "batch_norm", "batch_norm_training", "causal_mask", "conv2d",
    "dropout", "embedding_lookup", "layer_norm", "max_pool2d", "moments", "resample",
    "softmax_cross_entropy", "sparse_softmax_cross_entropy",
]
