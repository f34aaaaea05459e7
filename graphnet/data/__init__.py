"""Input pipelines on NumPy: `Dataset.from_arrays(x, y).shuffle().batch(32)` and helpers."""

from graphnet.data import augmentation, preprocessing
from graphnet.data.dataset import DataError, Dataset
from graphnet.data.language_model import TokenWindows, split_tokens
from graphnet.data.split import train_test_split

__all__ = ["DataError", "Dataset", "TokenWindows", "augmentation", "preprocessing", "split_tokens",
           "train_test_split"]
