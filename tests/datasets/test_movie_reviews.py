"""gn.datasets.movie_reviews: finding, downloading (from a local mirror), parsing, splitting."""

import bz2
import hashlib

import numpy as np
import pytest
from mnist_fakes import refused_url

from graphnet.datasets import CorruptFileError, DataNotFoundError, movie_reviews

ROWS = [("fresh", "A delight, start to finish.", "Film A"),
        ("rotten", "A mess, \"sadly\".", "Film A"),
        ("plot", "Two friends rob a bank.", "Film A"),
        ("fresh", "Smart and funny.", "Film B"),
        ("rotten", "Dull.", "Film C"),
        ("fresh", "Lovely — très bien. 映画", "Film D"),
        ("rotten", "Overlong, line\nbreak inside.", "Film E")]


def small_corpus() -> bytes:
    lines = ["category,text,movie_name,has_plot_and_reviews"]
    for category, text, movie in ROWS:
        quoted = '"' + text.replace('"', '""') + '"'
        lines.append(f"{category},{quoted},{movie},True")
    return bz2.compress(("\n".join(lines) + "\n").encode("utf-8"))


@pytest.fixture(autouse=True)
def no_real_mirror(monkeypatch):
    monkeypatch.setattr(movie_reviews, "URLS", (refused_url(movie_reviews.FILENAME),))


def serve(mirror, monkeypatch, data, checksum=None):
    mirror.routes["/corpus.csv.bz2"] = data
    monkeypatch.setattr(movie_reviews, "URLS", (mirror.url("/corpus.csv.bz2"),))
    monkeypatch.setattr(movie_reviews, "SHA256", checksum or hashlib.sha256(data).hexdigest())


def test_download_parse_and_cache(mirror, monkeypatch, isolated):
    serve(mirror, monkeypatch, small_corpus())
    rows = movie_reviews.load_rows()
    assert [r["text"] for r in rows] == [text for _, text, _ in ROWS]
    assert (isolated / movie_reviews.FILENAME).is_file()
    movie_reviews.load_rows()
    assert mirror.requests == ["/corpus.csv.bz2"]            # the second load used the cache
    assert movie_reviews.load_text() == "\n".join(text for _, text, _ in ROWS)


def test_a_wrong_checksum_is_refused_and_nothing_is_cached(mirror, monkeypatch, isolated):
    serve(mirror, monkeypatch, small_corpus(), checksum="00" * 32)
    with pytest.raises(Exception, match="SHA-256"):
        movie_reviews.load_rows()
    assert not (isolated / movie_reviews.FILENAME).exists()


def test_offline_without_the_file_says_where_it_looked(isolated):
    with pytest.raises(DataNotFoundError, match="is not in .* and could not be downloaded"):
        movie_reviews.load_rows()


def test_split_by_movie_keeps_each_movie_on_one_side(tmp_path):
    (tmp_path / movie_reviews.FILENAME).write_bytes(small_corpus())
    (x_train, y_train), (x_test, y_test) = movie_reviews.load_data(tmp_path, test_size=0.4,
                                                                   seed=1)
    assert len(x_train) + len(x_test) == 6                     # the plot is left out
    assert y_train.dtype == np.int64 and set(y_train) | set(y_test) == {0, 1}
    movie_of = {text: movie for _, text, movie in ROWS}
    assert not {movie_of[t] for t in x_train} & {movie_of[t] for t in x_test}
    again = movie_reviews.load_data(tmp_path, test_size=0.4, seed=1)
    assert list(again[1][0]) == list(x_test)


def test_bad_files_are_named(tmp_path):
    (tmp_path / movie_reviews.FILENAME).write_bytes(b"not bz2 at all")
    with pytest.raises(CorruptFileError, match="is not a readable bz2"):
        movie_reviews.load_rows(tmp_path)
    (tmp_path / movie_reviews.FILENAME).write_bytes(bz2.compress(b"a,b\n1,2\n"))
    with pytest.raises(CorruptFileError, match="has columns"):
        movie_reviews.load_rows(tmp_path / movie_reviews.FILENAME)
    with pytest.raises(DataNotFoundError, match="no rotten_tomatoes.csv.bz2 at"):
        movie_reviews.load_rows(tmp_path / "missing")


def test_the_real_file(real_graphnet_data):
    if not real_graphnet_data:
        pytest.skip("GRAPHNET_DATA is not set")
    (x_train, _), (x_test, _) = movie_reviews.load_data(real_graphnet_data)
    assert len(x_train) + len(x_test) == 7403 + 5405
    assert 2_000_000 < len(movie_reviews.load_text(real_graphnet_data)) < 2_300_000
