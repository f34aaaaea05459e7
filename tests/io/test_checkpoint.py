"""Checkpoint files (graphnet/io/checkpoint.py): formats, atomic writes, checked reads."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import zipfile

import numpy as np
import pytest

from graphnet.io import checkpoint
from graphnet.io.checkpoint import CheckpointError

FORMATS = ["run.npz", "run.safetensors", "run"]

ARRAYS = {
    "dense/kernel": np.arange(12, dtype=np.float32).reshape(3, 4),
    "dense/bias": np.array([0.5, -1.0], np.float64),
    "adam/iterations": np.array(7, np.int64),
    "mask": np.array([True, False]),
    "empty": np.zeros((0, 3), np.float32),
}


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_keeps_values_dtypes_shapes_and_metadata(tmp_path, name):
    path = tmp_path / name
    checkpoint.write(path, ARRAYS, {"kind": "test", "model": {"layers": [1, 2]}})
    arrays, metadata = checkpoint.read(path)
    assert set(arrays) == set(ARRAYS)
    for key, value in ARRAYS.items():
        assert arrays[key].dtype == value.dtype and arrays[key].shape == value.shape
        np.testing.assert_array_equal(arrays[key], value)
    assert metadata["kind"] == "test" and metadata["model"] == {"layers": [1, 2]}
    assert metadata["format_version"] == checkpoint.FORMAT_VERSION


def test_a_folder_keeps_only_its_latest_arrays(tmp_path):
    path = tmp_path / "run"
    checkpoint.write(path, {"a": np.zeros(3)}, {})
    checkpoint.write(path, {"a": np.ones(3)}, {})
    files = sorted(os.listdir(path))
    assert files[-1] == checkpoint.FOLDER_INDEX and len(files) == 2
    np.testing.assert_array_equal(checkpoint.read(path)[0]["a"], np.ones(3))


@pytest.mark.parametrize("name", FORMATS)
def test_a_failed_write_leaves_the_previous_checkpoint_and_no_temporary_file(
        tmp_path, name, monkeypatch):
    path = tmp_path / name
    checkpoint.write(path, {"w": np.zeros(4)}, {"n": 1})
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir(path)) if path.is_dir() else None

    def fail(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", fail)
    monkeypatch.setattr(checkpoint, "_safetensors", fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.write(path, {"w": np.ones(4)}, {"n": 2})
    after = sorted(os.listdir(tmp_path)), sorted(os.listdir(path)) if path.is_dir() else None
    assert after == before
    monkeypatch.undo()
    arrays, metadata = checkpoint.read(path)
    np.testing.assert_array_equal(arrays["w"], np.zeros(4))
    assert metadata["n"] == 1


def _corrupt(path, offset_from_end=40):
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_corrupted_npz_names_the_file_and_the_entry(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.write(path, {"w": np.zeros(1000, np.float32)}, {})
    data = bytearray(path.read_bytes())
    data[data.find(b"\x93NUMPY") + 200] ^= 0xFF       # inside w's data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"run\.npz.*'w'"):
        checkpoint.read(path)


def test_a_corrupted_safetensors_entry_fails_its_crc(tmp_path):
    path = tmp_path / "run.safetensors"
    checkpoint.write(path, {"a": np.zeros(10, np.float32), "b": np.ones(1000, np.float32)}, {})
    _corrupt(path)
    with pytest.raises(CheckpointError, match=r"run\.safetensors: entry 'b' is corrupted"):
        checkpoint.read(path)


@pytest.mark.parametrize("name", ["run.npz", "run.safetensors"])
def test_a_truncated_file_is_refused_by_name(tmp_path, name):
    path = tmp_path / name
    checkpoint.write(path, {"w": np.zeros(5000, np.float32)}, {})
    path.write_bytes(path.read_bytes()[:9000])
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        checkpoint.read(path)


def test_an_entry_that_changed_shape_is_named(tmp_path):
    path = tmp_path / "run.npz"
    checkpoint.write(path, {"w": np.zeros((2, 3))}, {})
    with zipfile.ZipFile(path) as z:
        meta = z.read(checkpoint.METADATA_KEY + ".npy")
    # the same metadata, another array under the same name
    np.savez(path, w=np.zeros((3, 2)), **{checkpoint.METADATA_KEY: np.load(
        __import__("io").BytesIO(meta))})
    with pytest.raises(CheckpointError, match=r"entry 'w' is float64 \[3, 2\].*\[2, 3\]"):
        checkpoint.read(path)


def test_a_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "run"
    checkpoint.write(path, {"w": np.zeros(2)}, {})
    index = path / checkpoint.FOLDER_INDEX
    meta = json.loads(index.read_text())
    meta["format_version"] = checkpoint.FORMAT_VERSION + 1
    index.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="format version 2 by a newer graphnet"):
        checkpoint.read(path)


def test_pickled_objects_are_never_loaded(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="evil.npz"):
        checkpoint.read(path)
    with pytest.raises(CheckpointError, match="object; checkpoints hold numeric"):
        checkpoint.write(tmp_path / "x.npz", {"w": np.array([None], dtype=object)}, {})


def test_files_that_are_not_graphnet_checkpoints(tmp_path):
    np.savez(tmp_path / "plain.npz", w=np.zeros(2))
    with pytest.raises(CheckpointError, match="has no graphnet metadata"):
        checkpoint.read(tmp_path / "plain.npz")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        checkpoint.read(tmp_path / "missing.npz")
    (tmp_path / "folder").mkdir()
    with pytest.raises(CheckpointError, match="has no checkpoint.json"):
        checkpoint.read(tmp_path / "folder")


def test_bad_paths(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="folder .*nowhere does not exist"):
        checkpoint.write(tmp_path / "nowhere" / "run.npz", {"w": np.zeros(1)}, {})
    with pytest.raises(CheckpointError, match=r"use a \.npz or \.safetensors"):
        checkpoint.write(tmp_path / "run.h5", {"w": np.zeros(1)}, {})
    # As root every folder is writable, so stand in for a read-only one.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(CheckpointError, match="is not writable"):
        checkpoint.write(tmp_path / "run.npz", {"w": np.zeros(1)}, {})
    monkeypatch.undo()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(CheckpointError, match="cannot save .*Permission denied"):
        checkpoint.write(tmp_path / "run.npz", {"w": np.zeros(1)}, {})
    assert os.listdir(tmp_path) == []


KILLED_WRITER = textwrap.dedent("""
    import sys
    import graphnet as gn
    path = sys.argv[1]
    small = gn.Sequential([gn.layers.Dense(3, input_shape=(2,), name="small")])
    small.save(path)
    print("first saved", flush=True)
    layers = [gn.layers.Dense(1024, input_shape=(1024,), name="big_0")]
    layers += [gn.layers.Dense(1024, name=f"big_{i}") for i in range(1, 24)]
    big = gn.Sequential(layers)           # 96 MiB of weights
    while True:
        big.save(path)
""")


@pytest.mark.parametrize("name", FORMATS)
def test_sigkill_during_save_leaves_a_loadable_checkpoint(tmp_path, name):
    """A process killed while saving a large model (in a loop) never leaves a
    checkpoint that fails to load: it holds the first model or a whole second one."""
    import graphnet as gn
    path = tmp_path / name
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "first saved"
        for _ in range(200):   # wait until it is in the middle of a write
            if any(f.endswith(".tmp") for f in os.listdir(path if path.is_dir() else tmp_path)):
                break
            subprocess.run(["sleep", "0.02"])
        else:
            pytest.fail("the child never started a second save")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    model = gn.load_model(path)
    assert [layer.name for layer in model.layers] in (["small"], [f"big_{i}" for i in range(24)])
