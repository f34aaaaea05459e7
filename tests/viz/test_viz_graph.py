"""Graph and gradient diagrams, rendered by the real `dot` and read back as SVG."""

import numpy as np
import pytest

import graphnet as gn
from graphnet.viz import style

FILLS = {kind: attrs["fillcolor"] for kind, (_, attrs) in style.NODE_STYLES.items()}


def edge_count(nodes) -> int:
    return sum(len(n.inputs) for n in nodes)


def test_mlp_diagram_has_every_node_edge_and_scope(mlp, read_svg, tmp_path):
    svg = read_svg(gn.viz.draw(mlp.loss, tmp_path / "mlp.svg"))
    nodes = gn.Graph([mlp.loss]).nodes

    assert len(svg.nodes) == len(nodes) == 18
    assert len(svg.edges) == edge_count(nodes) == 17
    assert set(svg.clusters) == {"cluster_dense", "cluster_dense_1", "cluster_dense_2"}
    assert svg.texts(svg.clusters["cluster_dense_1"]) == ["dense_1"]


def test_node_labels_show_op_name_shape_and_dtype(mlp, read_svg, tmp_path):
    svg = read_svg(gn.viz.draw(mlp.loss, tmp_path / "mlp.svg"))
    texts = svg.node_texts()

    matmul = gn.Graph([mlp.loss]).nodes[9]
    assert matmul.name == "dense_1/matmul"
    assert texts[f"n{matmul.id}"] == ["Matmul", "matmul", "f32[?,4]"]
    assert texts[f"n{mlp.x.id}"] == ["placeholder", "x", "f32[?,6]"]
    assert texts[f"n{mlp.y.id}"] == ["placeholder", "y", "i64[?]"]
    assert texts[f"n{mlp.loss.id}"] == ["Mean{axis=(0,), keepdims=False}", "loss", "f32[]"]
    kernels = [t for t in texts.values() if t[:2] == ["variable", "kernel"]]
    assert sorted(t[2] for t in kernels) == ["f32[4,3]", "f32[5,4]", "f32[6,5]"]


def test_kinds_of_node_look_different_and_the_legend_names_them(mlp, read_svg, tmp_path):
    three = gn.constant(3.0, name="three")
    svg = read_svg(gn.viz.draw(mlp.loss * three, tmp_path / "mlp.svg"))
    fills = [svg.fill(title) for title in svg.nodes]

    assert fills.count(FILLS["placeholder"]) == 2
    assert fills.count(FILLS["variable"]) == 6
    assert fills.count(FILLS["constant"]) == 1
    assert fills.count(FILLS["op"]) == len(fills) - 9
    assert svg.node_texts()[f"n{three.id}"][0] == "const 3.0"
    legend = svg.texts()
    for entry in ("legend", "placeholder (fed)", "variable", "constant", "forward op"):
        assert entry in legend
    assert "gradient op (backward, dashed)" not in legend


def test_show_grads_draws_forward_and_backward_with_backward_edges_dashed(
        mlp, read_svg, tmp_path):
    svg = read_svg(gn.viz.draw(mlp.loss, tmp_path / "grads.svg", show_grads=True))

    # The same gradients built by hand, named as the drawing named them:
    # drawing does not use up the `gradients` scope name.
    grads = gn.gradients(mlp.loss, mlp.variables)
    assert grads[0].name.startswith("gradients/")
    nodes = gn.Graph([mlp.loss, *grads]).nodes
    backward = [n for n in nodes if n.name.startswith("gradients/")]
    forward = [n for n in nodes if n not in backward]

    assert len(svg.nodes) == len(nodes)
    assert len(svg.edges) == edge_count(nodes)
    assert len(svg.dashed_edges()) == edge_count(backward)
    assert "cluster_gradients" in svg.clusters
    fills = [svg.fill(t) for t in svg.nodes]
    gradient_ops = [n for n in backward if not isinstance(n.op, gn.graph.Constant)]
    assert fills.count(FILLS["gradient"]) == len(gradient_ops) > 20
    assert fills.count(FILLS["op"]) == len(forward) - 8
    assert "gradient op (backward, dashed)" in svg.texts()
    assert any(t.startswith("backward edge") for t in svg.texts())


def test_drawing_gradients_by_hand_matches_show_grads(mlp):
    shown = gn.viz.to_dot(mlp.loss, show_grads=True).source
    by_hand = gn.viz.to_dot([mlp.loss, *gn.gradients(mlp.loss, mlp.variables)]).source
    assert shown.count(" -> ") == by_hand.count(" -> ")
    assert shown.count("[label=") == by_hand.count("[label=")


def test_show_grads_needs_something_to_differentiate():
    x = gn.placeholder((None, 3), name="x")
    with pytest.raises(ValueError, match="nothing to differentiate"):
        gn.viz.to_dot(gn.sum(x * 2.0), show_grads=True)


def deep_model(layers=30):
    """`layers` scoped tanh layers, `layer`, `layer_1`, ... `layer_29`."""
    h = gn.placeholder((None, 4), name="x")
    for _ in range(layers):
        with gn.name_scope("layer"):
            w = gn.variable(np.eye(4, dtype=np.float32), name="w")
            b = gn.variable(np.zeros(4, np.float32), name="b")
            h = gn.tanh(h @ w + b)
    return h


def test_depth_one_folds_each_scope_of_a_deep_model_into_one_box(read_svg, tmp_path):
    out = deep_model(30)
    full = read_svg(gn.viz.draw(out, tmp_path / "full.svg"))
    folded = read_svg(gn.viz.draw(out, tmp_path / "folded.svg", depth=1))

    assert len(full.nodes) == 1 + 30 * 5
    assert len(full.clusters) == 30
    assert len(folded.nodes) == 1 + 30
    assert len(folded.edges) == 30  # x -> layer -> layer_1 -> ... -> layer_29
    assert folded.clusters == {}
    box = folded.node_texts()["box_layer_7"]
    assert box == ["layer_7", "3 ops, 2 variables", "out: f32[?,4]"]


def test_collapse_folds_the_named_scopes_only(read_svg, tmp_path):
    out = deep_model(30)
    one = read_svg(gn.viz.draw(out, tmp_path / "one.svg", collapse=["layer_3"]))
    pattern = read_svg(gn.viz.draw(out, tmp_path / "pattern.svg", collapse="layer_1*"))

    assert len(one.nodes) == 1 + 30 * 5 - 4
    assert "box_layer_3" in one.nodes and "cluster_layer_3" not in one.clusters
    boxes = sorted(t for t in pattern.nodes if t.startswith("box_"))
    assert boxes == ["box_layer_1"] + [f"box_layer_1{i}" for i in range(10)]


def test_nested_scopes_become_nested_clusters_and_depth_counts_levels():
    x = gn.placeholder((None, 4), name="x")
    a = gn.softmax(x, name="block/attn/softmax")
    out = gn.relu(gn.add(a, x, name="block/add"), name="block/relu")
    nested = gn.viz.to_dot(out).source
    assert "subgraph cluster_block {" in nested and '"cluster_block/attn"' in nested
    folded = gn.viz.to_dot(out, depth=2).source
    assert '"box_block/attn"' in folded and "subgraph cluster_block {" in folded
    assert "box_block " in gn.viz.to_dot(out, depth=1).source


def test_collapse_rejects_scopes_that_do_not_exist_and_bad_depths(mlp):
    with pytest.raises(ValueError, match=r"matches no name scope.*\['dense', 'dense_1'"):
        gn.viz.to_dot(mlp.loss, collapse=["dense_9"])
    with pytest.raises(ValueError, match="depth must be"):
        gn.viz.to_dot(mlp.loss, depth=0)


def test_what_cannot_be_drawn_says_what_can():
    with pytest.raises(TypeError, match="a graph node, a list of nodes, a compiled plan"):
        gn.viz.to_dot(42)
    with pytest.raises(TypeError, match="cannot draw str"):
        gn.viz.to_dot([gn.placeholder((2,)), "x"])
    with pytest.raises(ValueError, match="show_buffers applies to compiled plans"):
        gn.viz.to_dot(gn.placeholder((2,)), show_buffers=True)


def test_objects_with_a_to_dot_hook_draw_themselves(mlp):
    class Model:
        def to_dot(self, **options):
            self.options = options
            return gn.viz.to_dot(mlp.loss, **options)

    model = Model()
    dot = gn.viz.to_dot(model, depth=1)
    assert model.options["depth"] == 1 and model.options["show_grads"] is False
    assert "box_dense_1" in dot.source


def test_updates_are_drawn_as_their_own_kind(mlp, read_svg, tmp_path):
    grads = gn.gradients(mlp.loss, mlp.variables)
    step = gn.group([gn.assign_sub(v, 0.1 * g) for v, g in zip(mlp.variables, grads)],
                    name="sgd")
    svg = read_svg(gn.viz.draw(step, tmp_path / "sgd.svg"))
    fills = [svg.fill(t) for t in svg.nodes]
    assert fills.count(FILLS["update"]) == 6 + 1  # six assignments and their group
    assert "variable update" in svg.texts()


def test_layout_legend_and_title_options(mlp):
    plain = gn.viz.to_dot({"loss": mlp.loss, "logits": mlp.logits}, legend=False,
                          rankdir="LR", title="my model").source
    assert "rankdir=LR" in plain and "legend" not in plain and 'label="my model"' in plain
    assert "<b>my model</b>" in gn.viz.to_dot(mlp.loss, title="my model").source
