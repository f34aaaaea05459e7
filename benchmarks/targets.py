"""The speed targets of the compiler issue (#3) and the layers issue (#5),
checked against the figures of one run. Reported, never asserted: a missed
target is a finding, not a failure of the benchmark."""

from __future__ import annotations

import math

from benchmarks.harness import Section, format_bytes

#: (what, issue, numerator figure, denominator figure or None, limit, "<=" or ">=").
#: A ratio target compares numerator / denominator with the limit; without a
#: denominator the figure itself is compared.
TARGETS = [
    ("seed epoch, graphnet plan / hand NumPy", "#3", "seed.graphnet", "seed.numpy", 1.0, "<="),
    ("seed epoch, graphnet plan / PyTorch", "#3", "seed.graphnet", "seed.torch", 0.65, "<="),
    ("seed epoch, passes off / passes on", "#3", "seed.graphnet_nopasses", "seed.graphnet",
     1.5, ">="),
    ("seed, memory allocated per steady-state step", "#3", "seed.graphnet.alloc", None, 0, "<="),
    ("wide MLP, graphnet plan / BLAS floor", "#3", "wide.graphnet", "wide.floor", 1.25, "<="),
    ("compile a 2,000-node graph, seconds", "#3", "compile.2000", None, 1.0, "<="),
    ("compile time growth exponent (1 = linear)", "#3", "compile.exponent", None, 1.3, "<="),
    ("LeNet-5 step, graphnet plan / PyTorch", "#5", "lenet.graphnet", "lenet.torch", 1.2, "<="),
    ("Transformer block step, graphnet / PyTorch", "#5", "transformer.graphnet",
     "transformer.torch", 1.0, "<="),
]


def targets_section(sections: list) -> Section:
    """One row per target whose figures this run measured."""
    figures = {}
    for section in sections:
        figures.update(section.figures)
    rows = []
    for what, issue, top, bottom, limit, sense in TARGETS:
        value = figures.get(top)
        if bottom is not None:
            below = figures.get(bottom)
            value = None if value is None or not below else value / below
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        met = value <= limit if sense == "<=" else value >= limit
        if top.endswith(".alloc"):
            shown, required = format_bytes(value), f"{sense} {limit:g} B"
        else:
            shown, required = f"{value:.2f}", f"{sense} {limit:g}"
        rows.append([what, issue, required, shown, "met" if met else "missed"])
    return Section("Targets from the issues (this run's figures)",
                   ["target", "issue", "required", "measured", "status"], rows,
                   ["ratios are medians of this run; re-run before relying on a verdict"])
