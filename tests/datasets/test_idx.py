"""IDX reader on small generated files, plain and gzip-compressed."""

import numpy as np
import pytest
from mnist_fakes import write_idx

from graphnet.datasets.download import CorruptFileError
from graphnet.datasets.idx import read_idx


@pytest.mark.parametrize("name", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_reads_uint8_images_plain_and_gzip(tmp_path, name):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(tmp_path / name, images)
    got = read_idx(tmp_path / name, ndim=3)
    assert got.dtype == np.uint8 and got.shape == (3, 4, 5)
    np.testing.assert_array_equal(got, images)
    got[0, 0, 0] = 1  # a writable array, not a view of the file's bytes


@pytest.mark.parametrize("code, dtype", [(0x0B, np.int16), (0x0C, np.int32), (0x0D, np.float32),
                                         (0x0E, np.float64)])
def test_reads_wider_types_big_endian_into_native_order(tmp_path, code, dtype):
    values = np.array([[-2, 1], [300, 7]], dtype)
    write_idx(tmp_path / "v.idx", values, code=code)
    got = read_idx(tmp_path / "v.idx")
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, values)


def test_bad_magic_number(tmp_path):
    (tmp_path / "f").write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(CorruptFileError, match=r"not an IDX file: magic number 0x504b0304"):
        read_idx(tmp_path / "f")


def test_labels_file_where_images_belong(tmp_path):
    write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(CorruptFileError, match=r"holds a 1-D array \(magic number 0x00000801\), "
                                               r"expected 3-D"):
        read_idx(tmp_path / "labels", ndim=3)


@pytest.mark.parametrize("cut, message", [(-7, "truncated: the header says shape"),
                                          (10, r"truncated IDX header \(10 of 16 bytes\)"),
                                          (2, "too short for a header")])
def test_truncated_file(tmp_path, cut, message):
    write_idx(tmp_path / "f", np.zeros((2, 3, 3), np.uint8))
    data = (tmp_path / "f").read_bytes()
    (tmp_path / "f").write_bytes(data[:cut])
    with pytest.raises(CorruptFileError, match=message):
        read_idx(tmp_path / "f", ndim=3)


def test_trailing_bytes(tmp_path):
    write_idx(tmp_path / "f", np.zeros(5, np.uint8))
    (tmp_path / "f").write_bytes((tmp_path / "f").read_bytes() + b"\0")
    with pytest.raises(CorruptFileError, match=r"has trailing bytes.*\(5,\) \(5 data bytes\), "
                                               "the file holds 6"):
        read_idx(tmp_path / "f")


def test_broken_gzip(tmp_path):
    write_idx(tmp_path / "f.gz", np.zeros((2, 28, 28), np.uint8))
    data = (tmp_path / "f.gz").read_bytes()
    (tmp_path / "f.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cannot read it as gzip-compressed IDX"):
        read_idx(tmp_path / "f.gz")
    (tmp_path / "g.gz").write_bytes(b"not gzip at all")
    with pytest.raises(CorruptFileError, match="gzip"):
        read_idx(tmp_path / "g.gz")


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.gz")
