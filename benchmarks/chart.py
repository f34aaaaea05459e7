"""The report as a picture: graphnet's time over each peer's, one bar per
workload, in panels against PyTorch eager, the BLAS floor and ONNX Runtime.
Bars left of 1 are where graphnet is faster. Written by `python -m
benchmarks --out results.md` next to the Markdown file (results.png), from
the figures it also writes there (results.json); redraw with

    python -m benchmarks.chart benchmarks/results.json
"""

from __future__ import annotations

import math
import textwrap

#: (panel, bar label, graphnet's figure, the peer's figure), in the order drawn.
BARS = [
    ("vs PyTorch eager", "seed MLP epoch (training)", "seed.graphnet", "seed.torch"),
    ("vs PyTorch eager", "wide MLP epoch (training)", "wide.graphnet", "wide.torch"),
    ("vs PyTorch eager", "LeNet-5 step (training)", "lenet.graphnet", "lenet.torch"),
    ("vs PyTorch eager", "Transformer block step", "transformer.graphnet", "transformer.torch"),
    ("vs PyTorch eager", "baby GPT step", "gpt.graphnet", "gpt.torch"),
    ("vs PyTorch eager", "baby GPT, 200 tokens generated", "gpt_generate.graphnet",
     "gpt_generate.torch"),
    ("vs PyTorch eager", "MiniLM encode 16 sentences", "bert_encode.graphnet", "bert_encode.torch"),
    ("vs PyTorch eager", "MiniLM fine-tuning step", "bert_step_64.graphnet",
     "bert_step_64.torch"),
    ("vs PyTorch eager", "seed MLP predict, batch 1", "infer_mlp.graphnet.1", "infer_mlp.torch.1"),
    ("vs PyTorch eager", "seed MLP predict, batch 1,024", "infer_mlp.graphnet.1024",
     "infer_mlp.torch.1024"),
    ("vs PyTorch eager", "LeNet-5 predict, batch 1", "infer_lenet.graphnet.1",
     "infer_lenet.torch.1"),
    ("vs PyTorch eager", "LeNet-5 predict, batch 1,024", "infer_lenet.graphnet.1024",
     "infer_lenet.torch.1024"),
    ("vs BLAS floor (matmuls only)", "seed MLP epoch", "seed.graphnet", "seed.floor"),
    ("vs BLAS floor (matmuls only)", "wide MLP epoch", "wide.graphnet", "wide.floor"),
    ("vs ONNX Runtime", "seed MLP predict, batch 1", "infer_mlp.graphnet.1",
     "infer_mlp.onnxruntime.1"),
    ("vs ONNX Runtime", "seed MLP predict, batch 1,024", "infer_mlp.graphnet.1024",
     "infer_mlp.onnxruntime.1024"),
    ("vs ONNX Runtime", "LeNet-5 predict, batch 1", "infer_lenet.graphnet.1",
     "infer_lenet.onnxruntime.1"),
    ("vs ONNX Runtime", "LeNet-5 predict, batch 1,024", "infer_lenet.graphnet.1024",
     "infer_lenet.onnxruntime.1024"),
]


#: What each panel's title says about its bars.
TITLES = {
    "vs PyTorch eager": "graphnet time / PyTorch eager's (left of 1: graphnet faster)",
    "vs BLAS floor (matmuls only)": "graphnet time / the BLAS floor's (the step's matrix "
                                    "products alone)",
    "vs ONNX Runtime": "graphnet time / ONNX Runtime's on graphnet's export (left of 1: "
                       "graphnet faster)",
}


def ratios(figures: dict) -> dict:
    """{panel: [(label, graphnet / peer), ...]} for the bars this run measured."""
    panels = {}
    for panel, label, ours, theirs in BARS:
        a, b = figures.get(ours), figures.get(theirs)
        if a is not None and b and math.isfinite(a) and math.isfinite(b):
            panels.setdefault(panel, []).append((label, a / b))
    return panels


def write_chart(figures: dict, path: str, subtitle: str = "") -> bool:
    """Draw the bars into a PNG at `path`; False (nothing written) when no
    ratio was measured or matplotlib is missing."""
    panels = ratios(figures)
    if not panels:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [len(bars) for bars in panels.values()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 1.1 + 0.34 * sum(heights) +
                                                          0.5 * len(panels)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (panel, bars) in zip(axes[:, 0], panels.items()):
        labels = [label for label, _ in bars][::-1]
        values = [value for _, value in bars][::-1]
        colours = ["#3a7d44" if v <= 1 else "#b5443b" for v in values]
        ax.barh(labels, values, color=colours, height=0.6)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log", base=2)
        low, high = min(values + [0.5]), max(values + [2.0])
        ax.set_xlim(low / 1.4, high * 1.6)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        for y, v in enumerate(values):
            ax.text(v * 1.04, y, f"{v:.2f}x", va="center", fontsize=8)
        ax.set_title(TITLES[panel], fontsize=10, loc="left")
        ax.tick_params(axis="y", labelsize=8)
        ax.tick_params(axis="x", labelsize=8)
    if subtitle:   # the command and the time, wrapped to the figure's width
        fig.suptitle(textwrap.fill(subtitle, 140), fontsize=8, x=0.01, ha="left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    import json
    import os
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: python -m benchmarks.chart RESULTS.json  (writes RESULTS.png)")
    with open(sys.argv[1], encoding="utf-8") as f:
        saved = json.load(f)
    out = os.path.splitext(sys.argv[1])[0] + ".png"
    if not write_chart(saved["figures"], out, saved.get("subtitle", "")):
        sys.exit(f"{sys.argv[1]} holds no ratio this chart draws")
    print(f"chart written to {out}")
