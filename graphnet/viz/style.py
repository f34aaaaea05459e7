"""How each kind of node looks: categories, colours, shapes, labels, legend.

Five kinds of node are told apart by shape or border *and* colour (so the
diagram still reads in greyscale or for colour-blind readers): placeholders,
variables, constants, forward ops and generated gradient ops (dashed, like
the backward edges), plus variable updates and collapsed scopes. Labels are
Graphviz HTML-like labels: op kind in bold, then the name, then the static
type (`f32[?,128]`).
"""

from __future__ import annotations

import html
import re

from graphnet.graph import Constant, Node, Placeholder, Variable, type_string
from graphnet.ops.state import Group

FONT = "Helvetica"

#: category -> (legend text, Graphviz node attributes)
NODE_STYLES = {
    "placeholder": ("placeholder (fed)", {"shape": "invhouse", "fillcolor": "#d6e6f7",
                                          "color": "#2f6db5"}),
    "variable": ("variable", {"shape": "cylinder", "fillcolor": "#fde3b8", "color": "#b86e00"}),
    "constant": ("constant", {"shape": "note", "fillcolor": "#eeeeee", "color": "#777777"}),
    "op": ("forward op", {"shape": "box", "style": "rounded,filled", "fillcolor": "#dcefd9",
                          "color": "#3c7d32"}),
    "gradient": ("gradient op (backward, dashed)", {"shape": "box",
                                                    "style": "rounded,filled,dashed",
                                                    "fillcolor": "#f8d5d3", "color": "#b03a2e"}),
    "update": ("variable update", {"shape": "hexagon", "fillcolor": "#e8dcf3",
                                   "color": "#6c3f99"}),
    "scope": ("collapsed scope", {"shape": "box3d", "fillcolor": "#e6e6f5", "color": "#4a4a8a"}),
}

FORWARD_EDGE = {"color": "#555555"}
BACKWARD_EDGE = {"color": "#b03a2e", "style": "dashed"}

# newrank ranks nodes across clusters globally, which keeps the forward and the
# backward graph side by side instead of pushing clusters apart.
GRAPH_ATTRS = {"rankdir": "TB", "newrank": "true", "fontname": FONT, "fontsize": "12",
               "nodesep": "0.25", "ranksep": "0.35", "labelloc": "t"}
NODE_ATTRS = {"fontname": FONT, "fontsize": "11", "style": "filled", "margin": "0.08,0.04"}
EDGE_ATTRS = {"fontname": FONT, "fontsize": "9", "arrowsize": "0.7"}
CLUSTER_ATTRS = {"style": "rounded,filled", "fillcolor": "#f7f7f7", "color": "#a0a0a0",
                 "fontname": FONT, "fontsize": "11", "labeljust": "l"}
GRADIENT_CLUSTER_ATTRS = {**CLUSTER_ATTRS, "fillcolor": "#fdf3f2", "color": "#d9a19b",
                          "fontcolor": "#b03a2e"}
STEP_CLUSTER_ATTRS = {"style": "dashed,rounded,filled", "fillcolor": "#fff7da",
                      "color": "#a08420", "fontname": FONT, "fontsize": "10", "labeljust": "l"}

_GRADIENT_SCOPE = re.compile(r"gradients(_\d+)?")
_MAX_OP_LABEL = 48


def is_gradient_scope(part: str) -> bool:
    """True for the scopes that `gn.gradients` builds in: `gradients`, `gradients_3`."""
    return _GRADIENT_SCOPE.fullmatch(part) is not None


def category(node: Node) -> str:
    """Which of NODE_STYLES a node is drawn as."""
    op = node.op
    if isinstance(op, Placeholder):
        return "placeholder"
    if isinstance(op, Variable):
        return "variable"
    if isinstance(op, Constant):
        return "constant"
    if any(is_gradient_scope(part) for part in node.name.split("/")[:-1]):
        return "gradient"
    if op.stateful or isinstance(op, Group):
        return "update"
    return "op"


def node_attrs(kind: str) -> dict:
    """Graphviz attributes of a node of category `kind` (filled unless it says otherwise)."""
    attrs = dict(NODE_STYLES[kind][1])
    attrs.setdefault("style", "filled")
    return attrs


def node_label(node: Node, shown_name: str, note: str | None = None) -> str:
    """`<b>MatMul</b> / matmul / f32[?,64]` as an HTML-like label."""
    lines = [f"<b>{_escape(_op_text(node))}</b>", _escape(shown_name)]
    if node.dtype is not None:
        lines.append(_small(type_string(node)))
    if note:
        lines.append(_small(note, color="#7a5c00"))
    return "<" + "<br/>".join(lines) + ">"


def scope_label(scope: str, members: list, outputs: list, note: str | None = None) -> str:
    """Label of a collapsed scope: its name, what it holds, the types it hands on."""
    ops = sum(1 for n in members if category(n) not in ("variable", "constant", "placeholder"))
    variables = sum(1 for n in members if category(n) == "variable")
    parts = [f"{ops} op{'s' if ops != 1 else ''}"]
    if variables:
        parts.append(f"{variables} variable{'s' if variables != 1 else ''}")
    lines = [f"<b>{_escape(scope)}</b>", _escape(", ".join(parts))]
    types = sorted({type_string(n) for n in outputs if n.dtype is not None})
    if types:
        lines.append(_small("out: " + ", ".join(types)))
    if note:
        lines.append(_small(note, color="#7a5c00"))
    return "<" + "<br/>".join(lines) + ">"


def legend_label(kinds: set, backward_edges: bool, title: str | None = None,
                 outputs: bool = True) -> str:
    """An HTML table: the title, one row per node category present, then the
    edge styles."""
    rows = [f'<tr><td colspan="2" align="left"><b>{_escape(title)}</b></td></tr>'] if title else []
    rows.append('<tr><td colspan="2"><b>legend</b></td></tr>')
    for kind, (text, attrs) in NODE_STYLES.items():
        if kind in kinds:
            rows.append(f'<tr><td bgcolor="{attrs["fillcolor"]}" width="22"> </td>'
                        f'<td align="left">{_escape(text)}</td></tr>')
    if outputs:
        rows.append('<tr><td border="3"> </td><td align="left">bold border: target</td></tr>')
    if backward_edges:
        rows.append(f'<tr><td><font color="{FORWARD_EDGE["color"]}">&#8594;</font></td>'
                    '<td align="left">forward edge</td></tr>')
        rows.append(f'<tr><td><font color="{BACKWARD_EDGE["color"]}">- -&gt;</font></td>'
                    '<td align="left">backward edge (dashed, laid out upward)</td></tr>')
    table = "".join(rows)
    return (f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">'
            f"{table}</table>>")


def _op_text(node: Node) -> str:
    """The first label line: the op with its attributes, or what a source is."""
    op = node.op
    if isinstance(op, Placeholder):
        return "placeholder"
    if isinstance(op, Variable):
        return "variable" if op.trainable else "variable (frozen)"
    if isinstance(op, Constant):
        if op.value.size <= 4:
            return f"const {op.value.tolist()}"
        return "const"
    text = op.label()
    return text if len(text) <= _MAX_OP_LABEL else text[:_MAX_OP_LABEL - 1] + "\u2026"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _small(text: str, color: str = "#555555") -> str:
    return f'<font point-size="10" color="{color}">{_escape(text)}</font>'
