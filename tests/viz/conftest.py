"""Shared pieces of the viz tests: a small hand-built MLP and an SVG reader."""

import re
import types
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import graphnet as gn

SVG = "{http://www.w3.org/2000/svg}"


def dense(h, n_in, n_out, activation=True):
    """One scoped layer, `dense`, `dense_1`, ...: h @ kernel + bias, then relu."""
    with gn.name_scope("dense"):
        kernel = gn.variable(gn.init.glorot_uniform((n_in, n_out), seed=0), name="kernel")
        bias = gn.variable(np.zeros(n_out, np.float32), name="bias")
        h = gn.matmul(h, kernel) + bias
        return gn.relu(h) if activation else h


@pytest.fixture
def mlp():
    """A 6-5-4-3 MLP with a sparse softmax cross-entropy loss, built from ops."""
    x = gn.placeholder((None, 6), "float32", name="x")
    y = gn.placeholder((None,), "int64", name="y")
    logits = dense(dense(dense(x, 6, 5), 5, 4), 4, 3, activation=False)
    loss = gn.mean(gn.nn.sparse_softmax_cross_entropy(logits, y), name="loss")
    variables = [n for n in gn.Graph([loss]) if isinstance(n.op, gn.graph.Variable)]
    return types.SimpleNamespace(x=x, y=y, logits=logits, loss=loss, variables=variables)


class SvgDiagram:
    """What Graphviz drew: node, cluster and edge groups keyed by their <title>."""

    def __init__(self, path):
        self.root = ET.parse(path).getroot()
        self.nodes, self.clusters, self.edges = {}, {}, []
        for group in self.root.iter(f"{SVG}g"):
            kind, title = group.get("class"), group.findtext(f"{SVG}title")
            if kind == "node":
                self.nodes[title] = group
            elif kind == "cluster":
                self.clusters[title] = group
            elif kind == "edge":
                self.edges.append((title, group))

    def texts(self, group=None) -> list:
        """All text lines drawn in `group` (the whole picture by default)."""
        group = self.root if group is None else group
        return [t.text for t in group.iter(f"{SVG}text") if t.text]

    def node_texts(self) -> dict:
        return {title: self.texts(g) for title, g in self.nodes.items()}

    def fill(self, title) -> str:
        """The fill colour of a node's shape."""
        for child in self.nodes[title].iter():
            shape = child.tag in (f"{SVG}polygon", f"{SVG}path", f"{SVG}ellipse")
            if shape and child.get("fill") not in (None, "none"):
                return child.get("fill")
        return "none"

    def dashed_edges(self) -> list:
        return [t for t, g in self.edges
                if any(p.get("stroke-dasharray") for p in g.iter(f"{SVG}path"))]

    def bbox(self, group) -> tuple:
        """(xmin, ymin, xmax, ymax) of every coordinate a group draws."""
        xs, ys = [], []
        for child in group.iter():
            coords = child.get("points") or child.get("d")
            if coords:
                numbers = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", coords)]
                xs += numbers[0::2]
                ys += numbers[1::2]
            if child.tag == f"{SVG}text":
                xs.append(float(child.get("x")))
                ys.append(float(child.get("y")))
        return min(xs), min(ys), max(xs), max(ys)

    def inside(self, node_title, cluster_title) -> bool:
        x0, y0, x1, y1 = self.bbox(self.clusters[cluster_title])
        a0, b0, a1, b1 = self.bbox(self.nodes[node_title])
        return x0 <= a0 and a1 <= x1 and y0 <= b0 and b1 <= y1


@pytest.fixture
def read_svg():
    return SvgDiagram
