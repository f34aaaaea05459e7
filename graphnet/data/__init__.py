"""Input pipelines on NumPy: `Dataset.from_arrays(x, y).shuffle().batch(32)` and helpers."""

from graphnet.data.dataset import DataError, Dataset
from graphnet.data.split import train_test_split

__all__ = ["DataError", "Dataset", "train_test_split"]
