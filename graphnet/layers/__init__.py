"""Keras-style layers: `gn.layers.Dense(128, activation="relu")`, ..."""

from graphnet.layers.base import Layer
from graphnet.layers.core import Activation, Dense, Dropout, Flatten, Reshape

__all__ = ["Activation", "Dense", "Dropout", "Flatten", "Layer", "Reshape"]
