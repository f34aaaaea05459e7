"""Checkpoint files: named arrays plus JSON metadata, as .npz, .safetensors or a folder.

    write("run.safetensors", {"dense/kernel": w, ...}, {"model": {...}})
    arrays, metadata = read("run.safetensors")

Rules every format follows:

- No pickle: arrays are plain numeric (object arrays are refused), .npz
  files are read with `allow_pickle=False`, metadata is JSON.
- Atomic writes: a temporary file in the target's folder is written,
  flushed and fsynced, then renamed over the target, so a process killed
  mid-write leaves the previous checkpoint intact. A folder checkpoint
  writes its arrays to a new file first and switches `checkpoint.json` to it
  last, the same way.
- Checked reads: the metadata lists every array's dtype, shape and CRC-32; a
  missing, extra, truncated or corrupted entry raises a `CheckpointError`
  naming the file and the first bad entry, before anything is returned.
- A format version number is stored; files from a newer version are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import zipfile
import zlib

import numpy as np

from graphnet.errors import GraphnetError

#: The layout version written into every checkpoint; readers refuse newer ones.
FORMAT_VERSION = 1
#: The .npz entry that holds the metadata, as UTF-8 JSON bytes.
METADATA_KEY = "__graphnet__"
#: A folder checkpoint's index file: metadata plus the name of its arrays file.
FOLDER_INDEX = "checkpoint.json"
FORMATS = (".npz", ".safetensors")


class CheckpointError(GraphnetError, ValueError):
    """A checkpoint that cannot be written or read: bad path, corrupt file, mismatch."""


def checkpoint_format(path) -> str:
    """"npz", "safetensors" or "folder", from the path's suffix."""
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npz":
        return "npz"
    if suffix == ".safetensors":
        return "safetensors"
    if suffix and not os.path.isdir(path):
        raise CheckpointError(f"cannot tell the checkpoint format of {path}: use a .npz or "
                              ".safetensors file name, or a folder path without a suffix")
    return "folder"


# ------------------------------------------------------------------- write


def write(path, arrays: dict, metadata: dict):
    """Write `arrays` (name -> ndarray) and JSON-able `metadata` to `path`, atomically."""
    path = os.fspath(path)
    kind = checkpoint_format(path)
    arrays = {name: _plain_array(name, value, path) for name, value in arrays.items()}
    if METADATA_KEY in arrays:
        raise CheckpointError(f"{path}: the array name {METADATA_KEY!r} is reserved")
    metadata = dict(metadata, format="graphnet", format_version=FORMAT_VERSION,
                    arrays={name: _describe(a) for name, a in arrays.items()})
    text = json.dumps(metadata, indent=1, sort_keys=False)
    if kind == "folder":
        _write_folder(path, arrays, metadata)
    else:
        _check_folder(os.path.dirname(os.path.abspath(path)), path)
        _atomic_write(path, lambda f: _encode(kind, arrays, text, f))


def _plain_array(name, value, path) -> np.ndarray:
    array = np.asarray(value, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if array.dtype.kind not in "biuf":
        raise CheckpointError(f"{path}: array {name!r} is {array.dtype}; checkpoints hold "
                              "numeric and bool arrays only (never pickled objects)")
    return array


def _describe(array: np.ndarray) -> dict:
    return {"dtype": array.dtype.name, "shape": list(array.shape),
            "crc32": _crc32(array)}


def _crc32(array: np.ndarray) -> int:
    return zlib.crc32(np.asarray(array, order="C").reshape(-1).view(np.uint8))


def _encode(kind: str, arrays: dict, text: str, f):
    if kind == "npz":
        np.savez(f, **arrays, **{METADATA_KEY: np.frombuffer(text.encode(), np.uint8)})
    else:
        f.write(_safetensors().save(arrays, metadata={"graphnet": text}))


def _write_folder(path: str, arrays: dict, metadata: dict):
    parent = os.path.dirname(os.path.abspath(path))
    _check_folder(parent, path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointError(f"cannot save a folder checkpoint to {path}: a file of that "
                              "name exists")
    os.makedirs(path, exist_ok=True)
    _check_folder(path, path)
    # New arrays under a new name first; the index switches to them last.
    arrays_file = f"arrays-{secrets.token_hex(4)}.npz"
    _atomic_write(os.path.join(path, arrays_file), lambda f: np.savez(f, **arrays))
    index = dict(metadata, arrays_file=arrays_file)
    _atomic_write(os.path.join(path, FOLDER_INDEX),
                  lambda f: f.write(json.dumps(index, indent=1).encode()))
    for name in os.listdir(path):  # arrays of earlier saves
        if name.startswith("arrays-") and name.endswith(".npz") and name != arrays_file:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(path, name))


def _check_folder(folder: str, path: str):
    if not os.path.isdir(folder):
        raise CheckpointError(f"cannot save {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CheckpointError(f"cannot save {path}: the folder {folder} is not writable")


def _atomic_write(path: str, fill):
    """Call `fill(file)` on a temporary file beside `path`, fsync it, rename it to `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=folder)
    except OSError as err:
        raise CheckpointError(f"cannot save {path}: {err.strerror} ({folder})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):   # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# -------------------------------------------------------------------- read


def read(path) -> tuple[dict, dict]:
    """(arrays, metadata) from a checkpoint, every entry checked against the metadata."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    kind = checkpoint_format(path)
    try:
        if kind == "folder":
            arrays, metadata, source = _read_folder(path)
        elif kind == "npz":
            arrays, text = _read_npz(path)
            metadata, source = _parse(text, path), path
        else:
            arrays, text = _read_safetensors(path)
            metadata, source = _parse(text, path), path
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise CheckpointError(f"cannot read checkpoint {path}: the file is truncated or "
                              f"corrupted ({type(err).__name__}: {err})") from None
    _verify(arrays, metadata, source)
    return arrays, metadata


def _read_npz(path: str) -> tuple[dict, str | None]:
    arrays = {}
    with np.load(path, allow_pickle=False) as data:
        for name in data.files:
            try:
                arrays[name] = data[name]
            except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
                raise CheckpointError(f"cannot read checkpoint {path}: entry {name!r} is "
                                      f"truncated or corrupted ({err})") from None
    text = arrays.pop(METADATA_KEY, None)
    return arrays, None if text is None else text.tobytes().decode()


def _read_safetensors(path: str) -> tuple[dict, str | None]:
    with open(path, "rb") as f:
        data = f.read()
    try:
        arrays = _safetensors().load(data)
        metadata = _safetensors_metadata(data)
    except Exception as err:  # safetensors raises its own SafetensorError
        raise CheckpointError(f"cannot read checkpoint {path}: not a valid .safetensors file "
                              f"({err})") from None
    return arrays, metadata.get("graphnet")


def _safetensors_metadata(data: bytes) -> dict:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]).get("__metadata__", {}) or {}


def _read_folder(path: str) -> tuple[dict, dict, str]:
    index = os.path.join(path, FOLDER_INDEX)
    if not os.path.exists(index):
        raise CheckpointError(f"{path} is not a graphnet checkpoint folder: it has no "
                              f"{FOLDER_INDEX}")
    with open(index, "rb") as f:
        metadata = _parse(f.read().decode(), index)
    source = os.path.join(path, str(metadata.get("arrays_file", "")))
    arrays, _ = _read_npz(source)
    return arrays, metadata, source


def _parse(text: str | None, path: str) -> dict:
    if text is None:
        raise CheckpointError(f"{path} is not a graphnet checkpoint: it has no graphnet "
                              "metadata")
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: its metadata is corrupted ({err})") from None
    version = metadata.get("format_version")
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: its metadata has no format version")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written in checkpoint format version {version} by a "
                              f"newer graphnet; this graphnet reads up to version "
                              f"{FORMAT_VERSION}: upgrade graphnet to load it")
    return metadata


def _verify(arrays: dict, metadata: dict, path: str):
    expected = metadata.get("arrays", {})
    for name, spec in expected.items():
        if name not in arrays:
            raise CheckpointError(f"{path}: entry {name!r} is missing (the file is truncated "
                                  "or was changed after it was written)")
        array = arrays[name]
        if array.dtype.name != spec["dtype"] or list(array.shape) != spec["shape"]:
            raise CheckpointError(f"{path}: entry {name!r} is {array.dtype.name} "
                                  f"{list(array.shape)}, but the checkpoint lists "
                                  f"{spec['dtype']} {spec['shape']}")
        if _crc32(array) != spec["crc32"]:
            raise CheckpointError(f"{path}: entry {name!r} is corrupted (its CRC-32 does not "
                                  "match the one written with it)")
    extra = sorted(set(arrays) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: entry {extra[0]!r} is not listed in the checkpoint's "
                              "metadata")


def _safetensors():
    try:
        import safetensors.numpy
    except ImportError:
        raise CheckpointError("the .safetensors format needs the safetensors package: pip "
                              "install safetensors (or save to .npz)") from None
    return safetensors.numpy
