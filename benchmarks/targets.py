"""The speed targets of the compiler issue (#3), the layers issue (#5) and
the close-to-the-limit issue (#17), checked against the figures of one run.
Reported, never asserted: a missed target is a finding, not a failure of the
benchmark."""

from __future__ import annotations

import math

from benchmarks.harness import NOISY, Section, format_bytes

#: (what, issue, numerator figure, denominator figure or None, limit, "<=" or ">=").
#: A ratio target compares numerator / denominator with the limit; without a
#: denominator the figure itself is compared.
TARGETS = [
    ("seed epoch, graphnet plan / hand NumPy", "#3", "seed.graphnet", "seed.numpy", 1.0, "<="),
    ("seed epoch, graphnet plan / PyTorch", "#3", "seed.graphnet", "seed.torch", 0.65, "<="),
    ("seed epoch, passes off / passes on", "#3", "seed.graphnet_nopasses", "seed.graphnet",
     1.5, ">="),
    ("wide MLP, graphnet plan / BLAS floor", "#3", "wide.graphnet", "wide.floor", 1.25, "<="),
    ("compile a 2,000-node graph, seconds", "#3", "compile.2000", None, 1.0, "<="),
    ("compile time growth exponent (1 = linear)", "#3", "compile.exponent", None, 1.3, "<="),
    ("LeNet-5 step, graphnet plan / PyTorch", "#5", "lenet.graphnet", "lenet.torch", 1.2, "<="),
    ("Transformer block step, graphnet / PyTorch", "#5", "transformer.graphnet",
     "transformer.torch", 1.0, "<="),
    # close to the limit (#17), one thread each; the default-thread JAX target is
    # measured by `--only threads`
    ("seed epoch, graphnet plan / hand NumPy", "#17", "seed.graphnet", "seed.numpy", 0.70, "<="),
    ("seed epoch, graphnet plan / BLAS floor", "#17", "seed.graphnet", "seed.floor", 1.3, "<="),
    ("seed epoch, graphnet plan / JAX jit", "#17", "seed.graphnet", "seed.jax", 0.80, "<="),
    ("seed epoch, model.fit / plan", "#17", "seed.graphnet_fit", "seed.graphnet", 1.05, "<="),
    ("wide MLP, graphnet plan / BLAS floor", "#17", "wide.graphnet", "wide.floor", 1.05, "<="),
    ("seed MLP predict, batch 1, graphnet plan / ONNX Runtime", "#17", "infer_mlp.graphnet.1",
     "infer_mlp.onnxruntime.1", 1.0, "<="),
    ("seed MLP predict, batch 1,024, graphnet plan / ONNX Runtime", "#17",
     "infer_mlp.graphnet.1024", "infer_mlp.onnxruntime.1024", 1.0, "<="),
    ("LeNet-5 step, graphnet plan / PyTorch", "#17", "lenet.graphnet", "lenet.torch", 0.75, "<="),
    ("Transformer block step, graphnet / PyTorch", "#17", "transformer.graphnet",
     "transformer.torch", 0.70, "<="),
    ("LeNet-5 step, NumPy backend / PyTorch", "#17", "lenet.graphnet_numpy", "lenet.torch",
     1.0, "<="),
    ("Transformer block step, NumPy backend / PyTorch", "#17", "transformer.graphnet_numpy",
     "transformer.torch", 1.0, "<="),
]

#: "Zero allocations per steady-state step", read as: no array of an
#: activation's or a gradient's size is allocated. NumPy itself allocates
#: iterator buffers (17-34 KiB) in every broadcasting ufunc, even with out=,
#: so the hand-written NumPy trainer's figure is the floor, and the target is
#: met within SLACK bytes of it.
ALLOCATION = ("seed, memory allocated per steady-state step", "#3", "seed.graphnet.alloc",
              "seed.numpy.alloc")
SLACK = 16 * 1024


def targets_section(sections: list) -> Section:
    """One row per target whose figures this run measured."""
    figures = {}
    for section in sections:
        figures.update(section.figures)
    rows = []
    for what, issue, top, bottom, limit, sense in TARGETS:
        value, best = figures.get(top), figures.get(f"{top}.best")
        if bottom is not None:
            below, below_best = figures.get(bottom), figures.get(f"{bottom}.best")
            value = None if value is None or not below else value / below
            best = None if best is None or not below_best else best / below_best
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        met = value <= limit if sense == "<=" else value >= limit
        noisy = any(figures.get(f"{f}.spread", 1.0) > NOISY for f in (top, bottom) if f)
        shown = f"{value:.2f}" + (f" (best runs {best:.2f})" if best is not None else "")
        rows.append([what, issue, f"{sense} {limit:g}", shown, _status(met, noisy)])
    what, issue, top, floor = ALLOCATION
    if figures.get(top) is not None and figures.get(floor) is not None:
        value, least = figures[top], figures[floor]
        rows.insert(3, [what, issue, f"~0: <= hand NumPy's {format_bytes(least)} + "
                        f"{format_bytes(SLACK)}", format_bytes(value),
                        _status(value <= least + SLACK)])
    return Section("Targets from the issues (this run's figures)",
                   ["target", "issue", "required", "measured", "status"], rows,
                   ["measured: the ratio of medians (of the fastest runs); the verdict uses "
                    "the medians; re-run before relying on a noisy one",
                    "memory per step: tracemalloc's peak above the step's start, NumPy and "
                    "Python heaps; the hand NumPy trainer's figure is NumPy's own ufunc "
                    "buffers"])


def _status(met: bool, noisy: bool = False) -> str:
    return ("met" if met else "missed") + (" (noisy: rerun)" if noisy else "")
