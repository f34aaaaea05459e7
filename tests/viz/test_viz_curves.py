"""Training curves: pairing train with validation series, and a real PNG."""

import struct
import sys

import pytest

import graphnet as gn
from graphnet.viz.curves import pair_series

HISTORY = {
    "loss": [0.9, 0.6, 0.45, 0.4],
    "accuracy": [0.7, 0.8, 0.86, 0.88],
    "val_loss": [1.0, 0.7, 0.6, 0.62],
    "val_accuracy": [0.65, 0.75, 0.8, 0.81],
}


def png_size(data: bytes) -> tuple:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_series_pair_train_with_validation_and_loss_comes_first():
    assert pair_series(HISTORY) == [("loss", "loss", "val_loss"),
                                    ("accuracy", "accuracy", "val_accuracy")]
    assert pair_series({"auc": [1], "val_top5": [1], "loss": [1]}) == [
        ("loss", "loss", None), ("auc", "auc", None), ("top5", None, "val_top5")]


def test_curves_are_a_png_of_figsize_times_dpi(tmp_path):
    pytest.importorskip("matplotlib")
    path = gn.viz.plot_curves(HISTORY, tmp_path / "curves.png", figsize=(6, 3), dpi=50)
    assert png_size(path.read_bytes()) == (300, 150)
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]


def test_default_size_grows_with_the_number_of_metrics(tmp_path):
    pytest.importorskip("matplotlib")
    one = gn.viz.plot_curves({"loss": [3, 2, 1]}, tmp_path / "one.png", dpi=20)
    two = gn.viz.plot_curves(HISTORY, tmp_path / "two.png", dpi=20, title="mnist")
    assert png_size(one.read_bytes()) == (90, 70)
    assert png_size(two.read_bytes()) == (180, 70)


def test_bad_histories_say_what_is_expected(tmp_path):
    pytest.importorskip("matplotlib")
    with pytest.raises(ValueError, match="non-empty dict"):
        gn.viz.plot_curves({}, tmp_path / "c.png")
    with pytest.raises(ValueError, match="series 'loss' should be a list of numbers"):
        gn.viz.plot_curves({"loss": ["a", "b"]}, tmp_path / "c.png")


def test_missing_matplotlib_says_how_to_install_it(tmp_path, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # what `import` sees when it is missing
    with pytest.raises(ImportError, match=r"pip install matplotlib"):
        gn.viz.plot_curves(HISTORY, tmp_path / "c.png")


def test_without_a_path_a_figure_comes_back_for_notebooks():
    figure = gn.viz.plot_curves(HISTORY)
    assert type(figure).__name__ == "Figure" and len(figure.axes) >= 1
    assert figure.axes[0].get_title() == "loss"
