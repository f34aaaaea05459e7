"""MNIST handwritten digits (LeCun, Cortes, Burges): 60,000 training and 10,000 test images.

    (x_train, y_train), (x_test, y_test) = gn.datasets.mnist.load_data()

The same arrays as `keras.datasets.mnist.load_data()`: images uint8
(N, 28, 28) with values 0-255, labels uint8 (N,) with values 0-9. The file is
the widely used `mnist.npz` (keys x_train, y_train, x_test, y_test), or the
four original IDX files. Where it is looked for, and how it is downloaded,
is described in `graphnet.datasets.download`.

URLS and SHA256 are module constants so tests (and users behind a proxy or
with a local mirror) can replace them.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from graphnet.datasets import download as dl
from graphnet.datasets.download import CorruptFileError, DataNotFoundError, DownloadError
from graphnet.datasets.idx import read_idx

FILENAME = "mnist.npz"
URLS = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",  # Keras's own
    "https://s3.amazonaws.com/img-datasets/mnist.npz",  # where Keras first published it
)
# SHA-256 of the Keras mnist.npz; checked on downloads only, since other copies
# with the same arrays (such as a user's own) can differ in their zip bytes.
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

KEYS = ("x_train", "y_train", "x_test", "y_test")
# Each array's original IDX file; a name ending in .gz is read too.
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def load_data(path=None):
    """MNIST as `((x_train, y_train), (x_test, y_test))`, uint8 NumPy arrays, like Keras.

    `path` is an `mnist.npz` file or a directory holding it (or the four IDX
    files); when it is given nothing else is tried. Otherwise the directory in
    $GRAPHNET_DATA, then the cache (`graphnet.datasets.download.cache_dir()`,
    ~/.cache/graphnet by default) are searched, and if both lack the file it
    is downloaded into the cache, its SHA-256 checked. Raises
    DataNotFoundError (offline, no file; it lists the paths searched),
    CorruptFileError (a bad file; a bad cached download is deleted) or
    ChecksumError (a mirror served wrong bytes; nothing is cached).
    """
    if path is not None:
        return _split(_load_explicit(Path(path).expanduser()))
    searched = []
    for directory, origin in dl.search_dirs():
        searched.append((directory, origin))
        if directory is not None and directory.is_dir():
            arrays = _load_dir(directory, cached=origin == "cache")
            if arrays is not None:
                return _split(arrays)
    dest = dl.download_to_cache(
        URLS, FILENAME, SHA256,
        lambda err: _not_found_message(searched, dl.cache_dir() / FILENAME, err))
    return _split(_load_npz(dest, cached=True))


def _load_explicit(path: Path) -> dict:
    if path.is_dir():
        arrays = _load_dir(path, cached=False)
        if arrays is None:
            raise DataNotFoundError(f"no MNIST in {path}: expected {path / FILENAME} or the four "
                                    f"IDX files {_idx_names()}")
        return arrays
    if path.is_file():
        return _load_npz(path, cached=False)
    raise DataNotFoundError(f"load_data(path={str(path)!r}): no such file or directory; pass "
                            f"an {FILENAME} file or a directory holding it (or the IDX files)")


def _load_dir(directory: Path, cached: bool) -> dict | None:
    """The arrays from `directory`'s mnist.npz, else its IDX files, else None."""
    npz = directory / FILENAME
    if npz.is_file():
        return _load_npz(npz, cached)
    found, missing = {}, []
    for key, name in IDX_FILES.items():
        candidates = [directory / name, directory / f"{name}.gz"]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append(name)
        else:
            found[key] = hit
    if not found:
        return None
    if missing:
        raise DataNotFoundError(f"{directory} holds some MNIST IDX files but lacks "
                                f"{', '.join(f'{m}[.gz]' for m in missing)}; MNIST needs all four")
    arrays = {key: read_idx(p, ndim=3 if key.startswith("x") else 1) for key, p in found.items()}
    _validate(arrays, f"the IDX files in {directory}", path=None, cached=False)
    return arrays


def _load_npz(path: Path, cached: bool) -> dict:
    """Read and check an mnist.npz; never unpickles anything."""
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded as npz:
                files = list(npz.files)
                arrays = {k: npz[k] for k in KEYS if k in files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
        _reject(path, f"cannot be read as an MNIST .npz archive ({err})", cached)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        _reject(path, "holds a single array, not an .npz archive", cached)
    missing = [k for k in KEYS if k not in arrays]
    if missing:
        _reject(path, f"lacks the keys {missing} (found {sorted(files)})", cached)
    _validate(arrays, str(path), path=path, cached=cached)
    return arrays


def _validate(arrays: dict, source: str, path: Path | None, cached: bool):
    """Check keys, dtypes and shapes the way Keras's arrays look, so a bad file fails here."""
    problems = []
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            problems.append(f"x_{split} is {x.dtype} {x.shape}, expected uint8 (N, 28, 28)")
        if y.dtype != np.uint8 or y.ndim != 1:
            problems.append(f"y_{split} is {y.dtype} {y.shape}, expected uint8 (N,)")
        elif len(x) != len(y):
            problems.append(f"x_{split} has {len(x)} images but y_{split} {len(y)} labels")
        elif len(y) == 0:
            problems.append(f"x_{split} and y_{split} are empty")
        elif y.max() > 9:
            problems.append(f"y_{split} holds label {y.max()}, expected 0-9")
    if problems:
        message = "not valid MNIST: " + "; ".join(problems)
        if path is None:
            raise CorruptFileError(f"{source}: {message}")
        _reject(path, message, cached)


def _reject(path: Path, reason: str, cached: bool):
    """Raise CorruptFileError; a bad cached download is deleted first so it is never reused."""
    if cached:
        path.unlink(missing_ok=True)
        advice = "It was deleted from the cache; the next load_data() downloads it again."
    else:
        advice = "Replace it with a good copy of mnist.npz (or remove it)."
    raise CorruptFileError(f"{path} {reason}. {advice}")


def _split(arrays: dict):
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _idx_names() -> str:
    return ", ".join(f"{name}[.gz]" for name in IDX_FILES.values())


def _not_found_message(searched, dest: Path, err: DownloadError) -> str:
    places = []
    for directory, origin in searched:
        if directory is None:
            places.append(f"  (GRAPHNET_DATA is not set: set it to a directory holding {FILENAME})")
        else:
            note = "$GRAPHNET_DATA" if origin == "GRAPHNET_DATA" else "the cache"
            places.append(f"  {directory / FILENAME}  ({note})")
    return (f"MNIST was not found and could not be downloaded.\nSearched for {FILENAME}, or the "
            f"IDX files {_idx_names()}, in:\n" + "\n".join(places) + f"\nDownload failed: {err}\n"
            f"To work offline, put {FILENAME} at {dest}, set GRAPHNET_DATA to the directory "
            "holding it, or call load_data(path=...).")
