"""Diagrams of graphs, gradients and compiled plans (Graphviz), and training curves.

    gn.viz.draw(loss, "loss.svg")                      # forward graph, scopes as clusters
    gn.viz.draw(loss, "grads.svg", show_grads=True)    # plus the generated backward graph
    gn.viz.draw(loss, "small.svg", depth=1)            # each top-level scope as one box
    gn.viz.draw(gn.compile(loss), "plan.svg", show_buffers=True)
    gn.viz.plot_curves({"loss": [...], "val_loss": [...]}, "curves.png")

In a notebook, nodes and plans display themselves as SVG.
"""

from graphnet.compiler.plan import Plan
from graphnet.graph import Node
from graphnet.viz.curves import plot_curves
from graphnet.viz.render import GraphvizNotFoundError, draw, repr_mimebundle
from graphnet.viz.targets import to_dot

__all__ = ["GraphvizNotFoundError", "draw", "plot_curves", "repr_mimebundle", "to_dot"]


def _repr_mimebundle_(self, include=None, exclude=None):
    """Show the diagram in Jupyter (SVG), with the repr as plain text."""
    return repr_mimebundle(self, include, exclude)


Node._repr_mimebundle_ = _repr_mimebundle_
Plan._repr_mimebundle_ = _repr_mimebundle_
