"""The seed example end to end on the real MNIST file (graphnet/examples/mnist_mlp.py)."""

import os

import pytest

from graphnet.examples import mnist_mlp


@pytest.mark.slow
def test_one_epoch_reaches_95_percent(tmp_path, capsys):
    if not os.environ.get("GRAPHNET_DATA") and not os.environ.get("CI"):
        pytest.skip("set GRAPHNET_DATA to the folder holding mnist.npz")  # CI must not skip
    accuracy = mnist_mlp.main(["--epochs", "1", "--out", str(tmp_path), "--verbose", "0"])
    assert accuracy >= 0.95
    assert "Test accuracy: " in capsys.readouterr().out
    assert (tmp_path / "mnist_mlp_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "mnist_mlp.svg").read_bytes()[:400]
