"""The transfer-learning example end to end, at a small budget (examples/transfer_mnist.py)."""

import os

import pytest

from graphnet.examples import transfer_mnist


@pytest.mark.slow
def test_pretrain_in_another_process_then_transfer(tmp_path):
    if not os.environ.get("GRAPHNET_DATA") and not os.environ.get("CI"):
        pytest.skip("set GRAPHNET_DATA to the folder holding mnist.npz")  # CI must not skip
    table = transfer_mnist.main(["--labels", "50", "--seeds", "1", "--steps", "40",
                                 "--pretrain-epochs", "1", "--pretrain-limit", "3000",
                                 "--out", str(tmp_path)])
    assert (tmp_path / "mnist_0_4_cnn.safetensors").exists()
    results = table[50]
    assert set(results) == {"scratch", "frozen", "fine-tune"}
    assert all(0.2 < accuracy <= 1.0 for accuracy in results.values())  # better than chance
    assert "| 50 |" in (tmp_path / "transfer_mnist.md").read_text()
