"""gn.datasets.mnist.load_data: search order, download into the cache, bad files, IDX, real file."""

import os
from pathlib import Path

import numpy as np
import pytest
from mnist_fakes import npz_bytes, refused_url, sha256, small_mnist, write_idx

import graphnet.datasets as gds
from graphnet.datasets import mnist
from graphnet.datasets.download import ChecksumError, CorruptFileError, DataNotFoundError


def assert_same(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for key, got in zip(mnist.KEYS, (x_train, y_train, x_test, y_test)):
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got, arrays[key])


def serve(mirror, monkeypatch, data, path="/mnist.npz", checksum=None):
    """Make `mirror` MNIST's only mirror, serving `data` with the checksum of `data`."""
    mirror.routes[path] = data
    monkeypatch.setattr(mnist, "URLS", (mirror.url(path),))
    monkeypatch.setattr(mnist, "SHA256", checksum or sha256(data))


# --- download into the cache ---------------------------------------------------------

def test_download_verifies_and_caches(mirror, monkeypatch, isolated):
    arrays = small_mnist()
    data = npz_bytes(arrays)
    serve(mirror, monkeypatch, data)
    assert_same(mnist.load_data(), arrays)
    assert sorted(p.name for p in isolated.iterdir()) == ["mnist.npz"]
    assert (isolated / "mnist.npz").read_bytes() == data
    assert_same(mnist.load_data(), arrays)  # the second load comes from the cache
    assert mirror.requests == ["/mnist.npz"]


def test_checksum_mismatch_is_an_error_and_caches_nothing(mirror, monkeypatch, isolated):
    serve(mirror, monkeypatch, npz_bytes(small_mnist()), checksum="ab" * 32)
    with pytest.raises(ChecksumError, match="SHA-256 mismatch, expected " + "ab" * 32):
        mnist.load_data()
    assert not isolated.exists() or list(isolated.iterdir()) == []


def test_primary_mirror_404_falls_back(mirror, monkeypatch, isolated):
    arrays = small_mnist()
    serve(mirror, monkeypatch, npz_bytes(arrays), path="/fallback/mnist.npz")
    monkeypatch.setattr(mnist, "URLS", (mirror.url("/primary/mnist.npz"), mnist.URLS[0]))
    assert_same(mnist.load_data(), arrays)
    assert mirror.requests == ["/primary/mnist.npz", "/fallback/mnist.npz"]


def test_offline_without_a_file_says_where_to_put_it(monkeypatch, tmp_path, isolated):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("GRAPHNET_DATA", str(empty))
    urls = (refused_url(), refused_url())
    monkeypatch.setattr(mnist, "URLS", urls)
    with pytest.raises(DataNotFoundError) as info:
        mnist.load_data()
    message = str(info.value)
    assert f"{empty / 'mnist.npz'}  ($GRAPHNET_DATA)" in message
    assert f"{isolated / 'mnist.npz'}  (the cache)" in message
    assert all(url in message for url in urls) and "refused" in message.lower()
    assert "train-images-idx3-ubyte[.gz]" in message
    assert f"put mnist.npz at {isolated / 'mnist.npz'}" in message
    assert isinstance(info.value, FileNotFoundError)


def test_offline_message_mentions_unset_graphnet_data():
    with pytest.raises(DataNotFoundError, match="GRAPHNET_DATA is not set"):
        mnist.load_data()


def test_truncated_cache_file_is_an_error_and_removed(mirror, monkeypatch, isolated):
    arrays = small_mnist()
    data = npz_bytes(arrays)
    isolated.mkdir()
    (isolated / "mnist.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cannot be read as an MNIST .npz archive.*"
                                               "deleted from the cache"):
        mnist.load_data()
    assert not (isolated / "mnist.npz").exists()
    serve(mirror, monkeypatch, data)  # the next call downloads a fresh copy
    assert_same(mnist.load_data(), arrays)


def bad_contents():
    good = small_mnist()
    cases = {
        "wrong keys": ({k: v for k, v in good.items() if k != "y_test"},
                       r"lacks the keys \['y_test'\]"),
        "wrong dtype": ({**good, "x_train": good["x_train"].astype(np.float32)},
                        r"x_train is float32 \(12, 28, 28\), expected uint8 \(N, 28, 28\)"),
        "wrong shape": ({**good, "x_test": good["x_test"].reshape(5, 784)},
                        r"x_test is uint8 \(5, 784\)"),
        "lengths differ": ({**good, "y_train": good["y_train"][:-1]},
                           "x_train has 12 images but y_train 11 labels"),
        "label range": ({**good, "y_test": good["y_test"] + 10}, "expected 0-9"),
        "pickled object": ({**good, "y_test": np.array([None, 1], dtype=object)},
                           "pickle"),
    }
    return [pytest.param(arrays, message, id=name) for name, (arrays, message) in cases.items()]


@pytest.mark.parametrize("arrays, message", bad_contents())
def test_malformed_cache_file_is_an_error_and_removed(isolated, arrays, message):
    isolated.mkdir()
    np.savez(isolated / "mnist.npz", **arrays)
    with pytest.raises(CorruptFileError, match=message):
        mnist.load_data()
    assert not (isolated / "mnist.npz").exists()


def test_npy_or_garbage_in_the_cache_is_removed(isolated):
    isolated.mkdir()
    np.save(isolated / "mnist.npy", np.zeros(3))
    (isolated / "mnist.npy").rename(isolated / "mnist.npz")
    with pytest.raises(CorruptFileError, match="single array, not an .npz archive"):
        mnist.load_data()
    assert not (isolated / "mnist.npz").exists()
    (isolated / "mnist.npz").write_bytes(b"<html>captive portal</html>")
    with pytest.raises(CorruptFileError, match="cannot be read"):
        mnist.load_data()
    assert not (isolated / "mnist.npz").exists()


def test_a_bad_user_file_is_reported_but_not_deleted(tmp_path, monkeypatch):
    bad = tmp_path / "mnist.npz"
    bad.write_bytes(b"truncated")
    with pytest.raises(CorruptFileError, match="Replace it with a good copy"):
        mnist.load_data(path=bad)
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path))
    with pytest.raises(CorruptFileError):
        mnist.load_data()
    assert bad.exists()


# --- where the file is found ---------------------------------------------------------

def test_explicit_path_file_or_directory(tmp_path):
    arrays = small_mnist()
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    np.savez_compressed(tmp_path / "other-name.npz", **arrays)
    assert_same(mnist.load_data(path=tmp_path / "other-name.npz"), arrays)
    assert_same(mnist.load_data(path=str(tmp_path)), arrays)


def test_explicit_path_that_is_missing_is_not_looked_up_elsewhere(tmp_path, isolated):
    with pytest.raises(DataNotFoundError, match="no such file or directory"):
        mnist.load_data(path=tmp_path / "nope.npz")
    with pytest.raises(DataNotFoundError, match=r"no MNIST in .*expected .*mnist\.npz"):
        mnist.load_data(path=tmp_path)
    assert not isolated.exists()


def test_graphnet_data_comes_before_the_cache(monkeypatch, tmp_path, isolated):
    in_data, in_cache = small_mnist(seed=1), small_mnist(seed=2)
    (tmp_path / "data").mkdir()
    isolated.mkdir()
    np.savez(tmp_path / "data" / "mnist.npz", **in_data)
    np.savez(isolated / "mnist.npz", **in_cache)
    assert_same(mnist.load_data(), in_cache)
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path / "data"))
    assert_same(mnist.load_data(), in_data)


def test_a_file_with_other_bytes_than_keras_is_accepted_locally(isolated):
    # The checksum guards downloads only; a local copy is checked by its contents.
    isolated.mkdir()
    np.savez(isolated / "mnist.npz", **small_mnist())
    assert sha256((isolated / "mnist.npz").read_bytes()) != mnist.SHA256
    mnist.load_data()


# --- the original IDX files ----------------------------------------------------------

def write_idx_set(directory: Path, arrays, gz_keys=()):
    directory.mkdir(exist_ok=True)
    for key, name in mnist.IDX_FILES.items():
        write_idx(directory / (name + (".gz" if key in gz_keys else "")), arrays[key])


@pytest.mark.parametrize("gz_keys", [(), tuple(mnist.KEYS), ("x_train", "y_test")],
                         ids=["plain", "gzip", "mixed"])
def test_reads_the_four_idx_files(tmp_path, monkeypatch, gz_keys):
    arrays = small_mnist()
    write_idx_set(tmp_path / "raw", arrays, gz_keys)
    assert_same(mnist.load_data(path=tmp_path / "raw"), arrays)
    monkeypatch.setenv("GRAPHNET_DATA", str(tmp_path / "raw"))
    assert_same(mnist.load_data(), arrays)


def test_a_missing_idx_file_is_named(tmp_path):
    write_idx_set(tmp_path, small_mnist())
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match=r"lacks t10k-labels-idx1-ubyte\[\.gz\]"):
        mnist.load_data(path=tmp_path)


def test_idx_files_that_do_not_fit_together(tmp_path):
    arrays = small_mnist()
    write_idx_set(tmp_path, {**arrays, "y_test": arrays["y_test"][:3]})
    with pytest.raises(CorruptFileError, match="x_test has 5 images but y_test 3 labels"):
        mnist.load_data(path=tmp_path)


def test_idx_images_and_labels_swapped(tmp_path):
    arrays = small_mnist()
    write_idx_set(tmp_path, arrays)
    images = tmp_path / "train-images-idx3-ubyte"
    labels = tmp_path / "train-labels-idx1-ubyte"
    images_bytes = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(images_bytes)
    with pytest.raises(CorruptFileError, match="expected 3-D"):
        mnist.load_data(path=tmp_path)


# --- the real file -------------------------------------------------------------------

@pytest.mark.slow
def test_real_mnist_from_graphnet_data(monkeypatch, real_graphnet_data):
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    path = Path(real_graphnet_data) / "mnist.npz" if real_graphnet_data else None
    if path is None or not path.is_file():
        why = (f"GRAPHNET_DATA={real_graphnet_data!r} has no mnist.npz" if real_graphnet_data
               else "GRAPHNET_DATA is not set")
        if in_ci:
            pytest.fail(f"{why}; CI must provide the real MNIST (.ci/run sets GRAPHNET_DATA)")
        pytest.skip(f"{why}; set GRAPHNET_DATA=../shared/datasets to run this test")
    monkeypatch.setenv("GRAPHNET_DATA", real_graphnet_data)
    (x_train, y_train), (x_test, y_test) = gds.mnist.load_data()
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert set(np.unique(y_train)) == set(np.unique(y_test)) == set(range(10))
    assert x_train.max() == 255 and x_train.min() == 0
    assert 30 < x_train.mean() < 40  # mostly black background, as in MNIST
