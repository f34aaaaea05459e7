"""Every pass preserves meaning: plans with it agree with optimize=False.

Each real graph (an MLP training step with SGD or momentum updates,
softmax cross-entropy, broadcasting, a static graph with constants) is run
for two steps with each pass alone and with the whole pipeline, and the
fetched values and the variables must match the unoptimized plan's.
"""


import pytest

import graphnet as gn
from graphnet.compiler import PASS_NAMES
from graphnet.compiler.kernels import numba_available

from .graphs import GRAPHS, assert_same_results, only, shapes_of

PASSES = [name for name in PASS_NAMES if name != "specialize"]


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("name", PASSES)
def test_each_pass_alone_preserves_results(graph, name):
    fetches, feed = GRAPHS[graph]()
    assert_same_results(fetches, feed, disable=only("specialize", name))


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_specialize_alone_preserves_results(graph):
    fetches, feed = GRAPHS[graph]()
    assert_same_results(fetches, feed, disable=only("specialize"))


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("specialized", [True, False], ids=["specialized", "generic"])
def test_whole_pipeline_preserves_results(graph, specialized):
    fetches, feed = GRAPHS[graph]()
    plan = assert_same_results(fetches, feed, feed_shapes=shapes_of(feed) if specialized else None)
    assert len(plan.graph) < len(gn.compile(fetches, optimize=False).graph)


@pytest.mark.parametrize("graph", sorted(GRAPHS))
@pytest.mark.parametrize("fusion_only", [True, False], ids=["fusion-alone", "pipeline"])
def test_the_numba_backend_preserves_results(graph, fusion_only, numba_cache):
    """The same checks with fused kernels compiled as Numba loops (float32
    loops differ from NumPy's ufuncs in the last bits: rtol 2e-5)."""
    fetches, feed = GRAPHS[graph]()
    disable = only("specialize", "fuse_elementwise") if fusion_only else ()
    plan = assert_same_results(fetches, feed, rtol=2e-5, backend="numba", disable=disable)
    assert plan.backend == "numba"


def test_the_numba_checks_run_numba_loops(numba_cache):
    """So the numba equivalence tests above are not vacuous."""
    kinds = set()
    for build in GRAPHS.values():
        fetches, feed = build()
        plan = gn.compile(fetches, feed_shapes=shapes_of(feed), backend="numba")
        kinds |= {step.kernel for step in plan.steps}
    assert "numba" in kinds


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_pipeline_without_each_pass_preserves_results(graph):
    for name in PASS_NAMES:
        fetches, feed = GRAPHS[graph]()
        assert_same_results(fetches, feed, steps=1, disable=[name])


def test_every_pass_changes_some_real_graph():
    """So the equivalence tests above are not vacuous (direct_convolutions
    acts under the numba backend only)."""
    backends = ["numpy", "numba"] if numba_available() else ["numpy"]
    changed = set()
    for build in GRAPHS.values():
        fetches, feed = build()
        for backend in backends:
            plan = gn.compile(fetches, feed_shapes=shapes_of(feed), arenas=True, backend=backend)
            changed |= {r.name for r in plan.applied if r.notes}
    assert changed == set(PASS_NAMES) - ({"direct_convolutions"} if len(backends) == 1 else set())
