"""Read IDX files, the format of the original MNIST distribution (plain or gzip-compressed).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from graphnet.datasets.download import CorruptFileError

# type code -> big-endian element type, as LeCun's format description lists them
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path, ndim: int | None = None) -> np.ndarray:
    """The array in the IDX file at `path` (`.gz` is decompressed), checked against its header.

    With `ndim` the file must hold that many dimensions (3 for MNIST images,
    1 for labels). Raises CorruptFileError for a bad magic number or a data
    size that does not match the header, so a truncated file is never
    silently reshaped.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise CorruptFileError(f"{path}: cannot read it as "
                               f"{'gzip-compressed ' if opener is gzip.open else ''}IDX: {err}"
                               ) from None
    if len(data) < 4:
        raise CorruptFileError(f"{path}: not an IDX file: {len(data)} bytes, too short for "
                               "a header")
    zero, code, dims = data[:2], data[2], data[3]
    magic = f"0x{int.from_bytes(data[:4], 'big'):08x}"
    if zero != b"\0\0" or code not in IDX_TYPES:
        raise CorruptFileError(f"{path}: not an IDX file: magic number {magic}, expected "
                               "0x0000TTDD (TT a type code such as 08 = uint8, DD the number "
                               "of dimensions)")
    if ndim is not None and dims != ndim:
        raise CorruptFileError(f"{path}: holds a {dims}-D array (magic number {magic}), "
                               f"expected {ndim}-D (images are 3-D, labels 1-D)")
    header = 4 + 4 * dims
    if len(data) < header:
        raise CorruptFileError(f"{path}: truncated IDX header ({len(data)} of {header} bytes)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise CorruptFileError(f"{path}: {what}: the header says shape {shape} "
                               f"({expected} data bytes), the file holds {found}")
    # astype copies into a writable array in native byte order.
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))
