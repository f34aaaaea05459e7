"""Arrays to and from .npz files: atomic writes, no pickle."""

from __future__ import annotations

import os
import tempfile
import zipfile

import numpy as np


def save_arrays(path, arrays: dict):
    """Write named arrays to `path` via a temporary file and a rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_arrays(path) -> dict:
    """Named arrays from an .npz file written by `save_arrays`."""
    try:
        with np.load(os.fspath(path), allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ValueError(f"cannot read weights from {path}: {err}") from None
