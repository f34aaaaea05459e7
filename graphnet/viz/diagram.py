"""Build a `graphviz.Digraph` from sorted nodes: the one drawing routine
behind graph, gradient and plan views.

Each node is drawn once (or folded into its collapsed scope's box), inside
the cluster of its name scope; fused plan steps become clusters of the
nodes they absorbed. An edge runs from each input to its consumer, dashed
and red where the consumer is a generated gradient op; those edges are laid
out reversed, so the backward graph climbs up beside the forward graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import graphviz

from graphnet.graph import Node, type_string
from graphnet.viz import style
from graphnet.viz.scopes import Cluster, check_collapse_options, common_prefix, place


@dataclass(frozen=True)
class StepGroup:
    """Nodes drawn together in one dashed cluster (a fused plan step)."""

    key: str
    label: str
    nodes: tuple


def build(nodes, outputs, *, collapse=(), depth=None, groups=(), notes=None,
          legend=True, title=None, rankdir="TB") -> graphviz.Digraph:
    """The diagram of `nodes` (in topological order), marking `outputs`.

    `groups` draws sets of nodes as clusters, `notes` adds a small line under
    a node's label (plan annotations).
    """
    nodes = list(nodes)
    notes = notes or {}
    patterns = check_collapse_options([n.name for n in nodes], collapse, depth)
    placement = {n: place(n.name, patterns, depth) for n in nodes}
    item = {n: f"box_{placement[n].box}" if placement[n].box else f"n{n.id}" for n in nodes}
    users: dict = {}
    for n in nodes:
        for inp in n.inputs:
            users.setdefault(inp, []).append(n)

    root = Cluster(())
    grouped = _place_groups(root, groups, placement)
    boxes: dict = {}
    for n in nodes:
        where = placement[n]
        if where.box is not None:
            if where.box not in boxes:
                root.at(where.cluster).items.append(("box", where.box))
            boxes.setdefault(where.box, []).append(n)
        elif n not in grouped:
            root.at(where.cluster).items.append(("node", n))

    dot = graphviz.Digraph(graph_attr={**style.GRAPH_ATTRS, "rankdir": rankdir},
                           node_attr=style.NODE_ATTRS, edge_attr=style.EDGE_ATTRS)
    drawing = _Drawing(dot, boxes, notes, set(outputs), item, users)
    drawing.emit_cluster(dot, root)
    backward = drawing.emit_edges(nodes)
    if legend:
        dot.attr(label=style.legend_label(drawing.kinds, backward, title), labelloc="b",
                 labeljust="l")
    elif title:
        dot.attr(label=title, labelloc="t")
    return dot


def _place_groups(root: Cluster, groups, placement) -> set:
    """Put each group of two or more uncollapsed nodes into the cluster all its
    nodes share; returns the nodes so placed."""
    grouped = set()
    for group in groups:
        members = [n for n in group.nodes if n in placement and placement[n].box is None]
        if len(members) < 2:
            continue
        path = common_prefix([placement[n].cluster for n in members])
        root.at(path).groups.append((group, members))
        grouped.update(members)
    return grouped


@dataclass
class _Drawing:
    """State shared while emitting one diagram."""

    dot: graphviz.Digraph
    boxes: dict
    notes: dict
    outputs: set
    item: dict
    users: dict
    kinds: set = field(default_factory=set)

    def emit_cluster(self, graph, cluster: Cluster):
        for kind, value in cluster.items:
            if kind == "node":
                self.emit_node(graph, value, cluster.path)
            else:
                self.emit_box(graph, value)
        for group, members in cluster.groups:
            with graph.subgraph(name=f"cluster_step_{group.key}") as sub:
                sub.attr(label=group.label, **style.STEP_CLUSTER_ATTRS)
                for n in members:
                    self.emit_node(sub, n, cluster.path)
        for part, child in cluster.children.items():
            attrs = (style.GRADIENT_CLUSTER_ATTRS if style.is_gradient_scope(part)
                     else style.CLUSTER_ATTRS)
            with graph.subgraph(name="cluster_" + "/".join(child.path)) as sub:
                sub.attr(label=part, tooltip="/".join(child.path), **attrs)
                self.emit_cluster(sub, child)

    def emit_node(self, graph, node: Node, cluster_path: tuple):
        kind = style.category(node)
        self.kinds.add(kind)
        shown = "/".join(node.name.split("/")[len(cluster_path):])
        attrs = style.node_attrs(kind)
        if node in self.outputs:
            attrs["penwidth"] = "2.5"
        graph.node(self.item[node], label=style.node_label(node, shown, self.notes.get(node)),
                   tooltip=f"{node.name} {type_string(node)} (created at {node.origin})",
                   **attrs)

    def emit_box(self, graph, scope: str):
        members = self.boxes[scope]
        member_set = set(members)
        leaving = [n for n in members if n in self.outputs
                   or any(c not in member_set for c in self.users.get(n, ()))]
        attrs = style.node_attrs("scope")
        if any(style.is_gradient_scope(part) for part in scope.split("/")):
            attrs["fillcolor"] = style.NODE_STYLES["gradient"][1]["fillcolor"]
            attrs["color"] = style.NODE_STYLES["gradient"][1]["color"]
        if any(n in self.outputs for n in members):
            attrs["penwidth"] = "2.5"
        self.kinds.add("scope")
        notes = [self.notes[n] for n in members if n in self.notes]
        note = "; ".join(notes) if len(notes) <= 2 else f"{len(notes)} plan steps"
        label = style.scope_label(scope, members, leaving, note or None)
        graph.node(self.item[members[0]], label=label,
                   tooltip=f"{scope} ({len(members)} nodes, collapsed)", **attrs)

    def emit_edges(self, nodes: list) -> bool:
        """One edge per input, but one per pair where a collapsed box is an
        end; returns whether any backward edge was drawn."""
        seen = set()
        backward_any = False
        for n in nodes:
            backward = style.category(n) == "gradient"
            for inp in n.inputs:
                if inp not in self.item:
                    continue
                src, dst = self.item[inp], self.item[n]
                if src == dst:
                    continue  # inside one collapsed box
                if src.startswith("box_") or dst.startswith("box_"):
                    if (src, dst, backward) in seen:
                        continue
                    seen.add((src, dst, backward))
                backward_any |= backward
                if backward:
                    # Laid out head-first, so the backward graph climbs back up
                    # beside the forward graph it mirrors; the arrow still
                    # points from input to consumer.
                    self.dot.edge(dst, src, dir="back", **style.BACKWARD_EDGE)
                else:
                    self.dot.edge(src, dst, **style.FORWARD_EDGE)
        return backward_any
