"""Training curves: loss and metrics per epoch, train and validation together.

matplotlib is imported only when a plot is drawn (it is slow to import), and
the plot is drawn on its Agg canvas directly, so no display is needed and
pyplot's global state is left alone.
"""

from __future__ import annotations

import io
import math
import pathlib

import numpy as np

from graphnet.viz.render import write_atomic

_VALIDATION = "val_"


def pair_series(history: dict) -> list:
    """[(metric, train key or None, validation key or None)], `loss` first,
    pairing `loss` with `val_loss`, `accuracy` with `val_accuracy`, ..."""
    metrics = []
    for key in history:
        metric = key.removeprefix(_VALIDATION)
        if metric not in metrics:
            metrics.append(metric)
    metrics.sort(key=lambda m: m != "loss")  # stable: loss first, the rest as given
    return [(m, m if m in history else None,
             _VALIDATION + m if _VALIDATION + m in history else None) for m in metrics]


def plot_curves(history: dict, path=None, *, figsize=None, dpi: int = 100,
                title: str | None = None):
    """Save a plot of per-epoch series (`{"loss": [...], "val_loss": [...]}`)
    to `path` (PNG, or another format matplotlib knows by the suffix): one
    subplot per metric, train and validation on the same axes. Returns the path;
    without a path, the matplotlib Figure (a notebook shows it).

    The image is `figsize` inches times `dpi` pixels; by default 4.5 x 3.5
    inches per subplot, up to three subplots a row.

        >>> gn.viz.plot_curves({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}, "curves.png")
    """
    Figure, FigureCanvasAgg = _matplotlib()
    pairs = pair_series(_check_history(history))
    cols = min(len(pairs), 3)
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=figsize or (4.5 * cols, 3.5 * rows), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (metric, train, val) in enumerate(pairs):
        ax = fig.add_subplot(rows, cols, i + 1)
        for key, label, style in ((train, "train", "-"), (val, "validation", "--")):
            if key is not None:
                values = np.asarray(history[key], dtype=float)
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, marker="o" if len(values) <= 30 else None,
                        markersize=3, label=label)
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    if path is None:
        return fig
    path = pathlib.Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    write_atomic(path, buffer.getvalue())
    return path


def _check_history(history) -> dict:
    if not isinstance(history, dict) or not history:
        raise ValueError("plot_curves needs a non-empty dict of per-epoch series, such as "
                         f"{{'loss': [...], 'val_loss': [...]}}; got {history!r:.80}")
    for key, values in history.items():
        array = np.asarray(values)
        if array.ndim != 1 or array.dtype.kind not in "iuf":
            raise ValueError(f"plot_curves: series '{key}' should be a list of numbers per "
                             f"epoch; got {array.dtype.name} of shape {array.shape}")
    return history


def _matplotlib():
    """matplotlib's Figure and Agg canvas, or an ImportError that says how to install it."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("gn.viz.plot_curves needs matplotlib, one of graphnet's "
                          "dependencies: pip install matplotlib") from None
    return Figure, FigureCanvasAgg
