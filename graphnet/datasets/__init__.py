"""Ready-made data sets: `gn.datasets.mnist.load_data()`, found locally or downloaded and cached.

`graphnet.datasets.download` holds the shared machinery (search order, cache,
verified atomic downloads) for adding more.
"""

from graphnet.datasets import download, idx, mnist, movie_reviews
from graphnet.datasets.download import (
    ChecksumError,
    CorruptFileError,
    DataNotFoundError,
    DownloadError,
    cache_dir,
)

__all__ = ["ChecksumError", "CorruptFileError", "DataNotFoundError", "DownloadError",
           "cache_dir", "download", "idx", "mnist", "movie_reviews"]
