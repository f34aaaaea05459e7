"""Property tests: random graphs of elementwise ops, broadcasting binary ops and
reductions over random axes have gradients that match central differences."""

from functools import partial

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import graphnet as gn
from graphnet.testing import check_gradients, max_examples

# Unary steps, each smooth on all reals (domains made safe inside) and slow-growing,
# so that chains of them keep values small enough for finite differences.
UNARY = {
    "neg": gn.neg,
    "scale": lambda x: 0.5 * x - 0.25,
    "square": gn.square,
    "tanh": gn.tanh,
    "sigmoid": gn.sigmoid,
    "softplus": gn.softplus,
    "exp": lambda x: gn.exp(gn.tanh(x)),
    "log": lambda x: gn.log(1 + gn.square(x)),
    "log1p": lambda x: gn.log1p(gn.sigmoid(x)),
    "sqrt": lambda x: gn.sqrt(1 + gn.square(x)),
    "pow": lambda x: gn.power(1 + gn.sigmoid(x), 1.5),
    "erf": gn.erf,
    "gelu": gn.gelu,
    "gelu_tanh": partial(gn.gelu, approximate=True),
    "sin": gn.sin,
    "cos": gn.cos,
}
BINARY = {
    "add": gn.add,
    "subtract": gn.subtract,
    "multiply": gn.multiply,
    "divide": lambda x, y: x / (1 + gn.square(y)),
    "power": lambda x, y: gn.power(1 + gn.sigmoid(x), gn.tanh(y)),
}
REDUCTIONS = {
    "sum": gn.sum,
    "mean": gn.mean,
    "max": gn.max,
    "min": gn.min,
    "prod": lambda x, axis, keepdims: gn.prod(1 + 0.1 * gn.tanh(x), axis, keepdims),
}

sizes = st.integers(1, 3)
shapes = st.lists(sizes, min_size=0, max_size=3).map(tuple)
seeds = st.integers(0, 2**16)


@st.composite
def broadcast_pair(draw):
    """Two shapes that broadcast together, like (3, 1) and (4,): each drops some
    leading axes of a common shape and sets some sizes to 1."""
    full = draw(shapes)

    def part():
        kept = full[draw(st.integers(0, len(full))):]
        return tuple(1 if draw(st.booleans()) else d for d in kept)
    return part(), part()


@st.composite
def axes(draw):
    """A reduction axis spec, resolved against the rank at build time."""
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    picks = draw(st.lists(st.integers(-3, 2), min_size=1, max_size=3))
    return kind, picks, draw(st.booleans())


def resolve_axis(spec, rank):
    """None, a (possibly negative) int or a tuple of distinct axes valid for `rank`."""
    kind, picks, _ = spec
    if kind == "none" or rank == 0:
        return None
    if kind == "int":
        return picks[0] % rank - (rank if picks[0] < 0 else 0)
    return tuple(sorted({p % rank for p in picks}))


def _broadcast(a, b):
    """The broadcast shape of a and b, or None when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


@st.composite
def programs(draw, pair, max_size):
    """Steps applied to a running value that starts as input a: every binary
    step meets an input whose shape broadcasts with the running shape (after a
    reduction, input b or a may no longer fit), so every program is valid."""
    shape, program = pair[0], []
    for _ in range(draw(st.integers(1, max_size))):
        kind = draw(st.sampled_from(["unary", "binary", "reduce"]))
        fits = [name for name, other in zip("ab", pair) if _broadcast(shape, other) is not None]
        if kind == "binary" and fits:
            name = draw(st.sampled_from(fits))
            program.append(("binary", draw(st.sampled_from(sorted(BINARY))), name,
                            draw(st.booleans())))
            shape = _broadcast(shape, pair["ab".index(name)])
        elif kind == "reduce":
            spec = draw(axes())
            program.append(("reduce", draw(st.sampled_from(sorted(REDUCTIONS))), spec))
            axis = resolve_axis(spec, len(shape))
            shape = np.sum(np.zeros(shape), axis=axis, keepdims=spec[2]).shape
        else:
            program.append(("unary", draw(st.sampled_from(sorted(UNARY)))))
    return program


def build_program(program):
    """A `build(a, b)` that applies the steps in turn to a running node."""
    def build(a, b):
        x = a
        for step in program:
            if step[0] == "unary":
                x = UNARY[step[1]](x)
            elif step[0] == "binary":
                other = a if step[2] == "a" else b
                x = BINARY[step[1]](*((other, x) if step[3] else (x, other)))
            else:
                x = REDUCTIONS[step[1]](x, resolve_axis(step[2], x.ndim), step[2][2])
        return x
    return build


def arrays(seed, *shape_list):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1.5, 1.5, shape) for shape in shape_list]


@settings(max_examples=max_examples(60))
@given(pair=broadcast_pair(), data=st.data(), seed=seeds, dynamic=st.booleans())
def test_random_graph_gradients(pair, data, seed, dynamic):
    program = data.draw(programs(pair, 4), label="program")
    check_gradients(build_program(program), arrays(seed, *pair), dynamic=dynamic,
                    name=f"{program} on {pair}")


@settings(max_examples=max_examples(40))
@given(pair=broadcast_pair(), op=st.sampled_from(sorted(BINARY)), seed=seeds)
def test_binary_broadcasting_gradients(pair, op, seed):
    check_gradients(BINARY[op], arrays(seed, *pair), name=f"{op} {pair}")


@settings(max_examples=max_examples(40))
@given(shape=shapes, op=st.sampled_from(sorted(REDUCTIONS)), spec=axes(), seed=seeds,
       dynamic=st.booleans())
def test_reduction_gradients_and_values(shape, op, spec, seed, dynamic):
    axis, keepdims = resolve_axis(spec, len(shape)), spec[2]
    (x,) = arrays(seed, shape)
    check_gradients(lambda v: REDUCTIONS[op](v, axis, keepdims), [x], dynamic=dynamic,
                    name=f"{op} axis={axis} keepdims={keepdims}")
    if op != "prod":
        node = gn.placeholder(x.shape, "float64")
        value = gn.Session().run(REDUCTIONS[op](node, axis, keepdims), {node: x})
        np.testing.assert_allclose(value, getattr(np, op)(x, axis=axis, keepdims=keepdims))


@settings(max_examples=max_examples(30))
@given(pair=broadcast_pair(), data=st.data(), seed=seeds)
def test_random_graph_second_derivatives(pair, data, seed):
    program = data.draw(programs(pair, 3), label="program")

    def hessian_vector(a, b):
        y = build_program(program)(a, b)
        w = gn.constant(np.random.default_rng(seed).standard_normal(y.shape))
        return gn.gradients(y, [a, b], grad_ys=w)
    check_gradients(hessian_vector, arrays(seed, *pair), rtol=1e-4, atol=1e-6,
                    name=f"gradient of {program} on {pair}")
