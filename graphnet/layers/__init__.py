"""Keras-style layers: `gn.layers.Dense(128, activation="relu")`, ..."""

from graphnet.layers.attention import MultiHeadAttention, TransformerEncoderLayer
from graphnet.layers.augmentation import (
    GaussianNoise,
    RandomCrop,
    RandomErasing,
    RandomFlip,
    RandomRotation,
    RandomTranslation,
    RandomZoom,
)
from graphnet.layers.base import Layer
from graphnet.layers.convolutional import (
    AveragePooling2D,
    AvgPool2D,
    Conv2D,
    GlobalAveragePooling2D,
    MaxPool2D,
    MaxPooling2D,
)
from graphnet.layers.core import Activation, Dense, Dropout, Flatten, Reshape
from graphnet.layers.embedding import Embedding
from graphnet.layers.normalization import BatchNormalization, LayerNormalization
from graphnet.layers.preprocessing import Normalization, Rescaling
from graphnet.layers.recurrent import GRU, LSTM, SimpleRNN

__all__ = [
    "Activation", "AveragePooling2D", "AvgPool2D", "BatchNormalization", "Conv2D", "Dense",
    "Dropout", "Embedding", "Flatten", "GlobalAveragePooling2D", "GRU", "Layer",
    "LayerNormalization", "LSTM", "MaxPool2D", "MaxPooling2D", "MultiHeadAttention", "Reshape",
    "SimpleRNN", "TransformerEncoderLayer",
    "Normalization", "Rescaling",
    "GaussianNoise", "RandomCrop", "RandomErasing", "RandomFlip", "RandomRotation",
    "RandomTranslation", "RandomZoom",
]
