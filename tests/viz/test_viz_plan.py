"""Diagrams of compiled plans: steps, fused kernels as clusters, buffers."""

import dataclasses

import pytest

import graphnet as gn
from graphnet.compiler.plan import Step


def unoptimized(fetches):
    """A plan of exactly the graph built, one step per node, whatever the passes do."""
    return gn.compile(fetches, optimize=False)


def test_plan_diagram_annotates_each_step_with_its_kernel(mlp, read_svg, tmp_path):
    plan = unoptimized(mlp.loss)
    svg = read_svg(gn.viz.draw(plan, tmp_path / "plan.svg", show_buffers=True))
    texts = svg.node_texts()

    assert len(svg.nodes) == len(plan.steps) == 18
    assert len(svg.edges) == 17
    for step in plan.steps:
        assert texts[f"n{step.nodes[0].id}"][-1] == f"{step.target} \u00b7 {step.kernel}"
    assert "compiled plan: 18 steps (numpy 10, variable 6, feed 2)" in svg.texts()
    assert set(svg.clusters) == {"cluster_dense", "cluster_dense_1", "cluster_dense_2"}


def test_an_optimized_plan_draws_every_node_its_steps_compute(mlp, read_svg, tmp_path):
    plan = gn.compile([mlp.loss, *gn.gradients(mlp.loss, mlp.variables)])
    svg = read_svg(gn.viz.draw(plan, tmp_path / "plan.svg", show_buffers=True))

    computed = {n for step in plan.steps for n in step.nodes} | set(plan.graph)
    assert {f"n{n.id}" for n in computed} == set(svg.nodes)
    assert len(svg.edges) == sum(i in computed for n in computed for i in n.inputs)
    fused = [s for s in plan.steps if len(s.nodes) > 1]
    assert {f"cluster_step_{s.target}" for s in fused} <= set(svg.clusters)
    texts = svg.node_texts()
    for step in plan.steps:
        if len(step.nodes) == 1:
            assert texts[f"n{step.nodes[0].id}"][-1].startswith(f"{step.target} \u00b7 ")


def test_without_show_buffers_steps_are_not_annotated(mlp, read_svg, tmp_path):
    svg = read_svg(gn.viz.draw(unoptimized(mlp.loss), tmp_path / "plan.svg"))
    assert all(len(texts) == 3 for texts in svg.node_texts().values())


def fuse(plan, names, kernel="numexpr", step_type=Step, **extra):
    """Replace the steps of the nodes called `names` with one fused step, as
    the compiler's fusion pass will."""
    fused = [s for s in plan.steps if s.nodes[0].name in names]
    target = fused[-1].target
    nodes = tuple(s.nodes[0] for s in fused)
    merged = step_type(target, "fused(...)", nodes, kernel, **extra)
    steps = []
    for step in plan.steps:
        if step in fused:
            if step is fused[-1]:
                steps.append(merged)
        else:
            steps.append(step if step_type is Step else step_type(*dataclasses.astuple(step)[:4],
                                                                   **extra))
    plan.steps = steps
    return target


def test_a_fused_step_is_a_cluster_of_the_nodes_it_absorbed(mlp, read_svg, tmp_path):
    plan = unoptimized(mlp.loss)
    target = fuse(plan, ["dense/add", "dense/relu"])
    svg = read_svg(gn.viz.draw(plan, tmp_path / "fused.svg"))

    cluster = f"cluster_step_{target}"
    assert svg.texts(svg.clusters[cluster]) == [f"{target}: fused numexpr kernel"]
    names = {f"n{n.id}": n.name for n in plan.graph}
    inside = sorted(names[t] for t in svg.nodes if svg.inside(t, cluster))
    assert inside == ["dense/add", "dense/relu"]
    assert svg.inside(f"n{plan.graph.nodes[4].id}", "cluster_dense")  # dense/matmul
    assert "compiled plan: 17 steps (numpy 8, variable 6, feed 2, numexpr 1)" in svg.texts()


def test_a_fused_step_across_scopes_sits_in_their_common_scope(mlp):
    plan = unoptimized(mlp.loss)
    target = fuse(plan, ["dense_2/add", "sparse_softmax_cross_entropy"], kernel="pattern")
    source = gn.viz.to_dot(plan).source
    assert f"\n\tsubgraph cluster_step_{target} {{" in source  # top level, not in dense_2
    assert f"{target}: fused pattern kernel" in source


@dataclasses.dataclass(frozen=True)
class BufferedStep:
    """What Step will look like once the memory planner assigns buffers."""

    target: str
    code: str
    nodes: tuple
    kernel: str
    buffer: str = "b0"


def test_buffers_and_their_reuse_are_shown_when_steps_have_them(mlp, read_svg, tmp_path):
    plan = unoptimized(mlp.loss)
    target = fuse(plan, ["dense/add", "dense/relu"], step_type=BufferedStep)
    plan.steps = [dataclasses.replace(s, buffer="b1") if s.nodes[-1].name == "dense_1/add"
                  else s for s in plan.steps]
    svg = read_svg(gn.viz.draw(plan, tmp_path / "buffers.svg", show_buffers=True))

    texts = svg.node_texts()
    add_1 = next(n for n in plan.graph if n.name == "dense_1/add")
    assert texts[f"n{add_1.id}"][-1] == "t10 \u00b7 numpy \u00b7 buffer b1"
    label = f"{target}: fused numexpr kernel, buffer b0 (shared by 16 steps)"
    assert svg.texts(svg.clusters[f"cluster_step_{target}"]) == [label]


def test_a_plan_with_gradients_draws_them_as_backward_ops(mlp, read_svg, tmp_path):
    plan = unoptimized([mlp.loss, *gn.gradients(mlp.loss, mlp.variables)])
    svg = read_svg(gn.viz.draw(plan, tmp_path / "train.svg"))
    backward = [n for n in plan.graph if n.name.startswith("gradients/")]
    assert len(svg.nodes) == len(plan.graph)
    assert len(svg.dashed_edges()) == sum(len(n.inputs) for n in backward)
    assert "cluster_gradients" in svg.clusters


def test_show_grads_does_not_apply_to_plans(mlp):
    with pytest.raises(ValueError, match="compile the gradients with it"):
        gn.viz.to_dot(gn.compile(mlp.loss), show_grads=True)
