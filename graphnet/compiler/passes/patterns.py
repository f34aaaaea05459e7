"""Known patterns rewritten into cheaper steps, after elementwise fusion.

fuse_matmul_bias: `x @ W + b` (a dense layer before its activation) as one
kernel. The product is written into the output buffer and the bias added
there in place: one step and one buffer instead of two. Elementwise fusion
already folds a bias add into its activation's kernel, so this takes what is
left (a network's logits, say), and only where the product has no other reader.

contiguous_reshapes: a reshape of a transposed array (attention heads merged
back into features) cannot be a view, so NumPy allocates a copy each run,
and again for each reshape of the same transpose. The copy becomes one
`Contiguous` step per transpose, into a planned buffer.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from graphnet.compiler.ops import Contiguous, MatmulBias
from graphnet.compiler.rewrite import make, note, plural, rebuild
from graphnet.graph import Graph, Node
from graphnet.ops.elementwise import Add
from graphnet.ops.linalg import Matmul
from graphnet.ops.shape import Reshape, Transpose
from graphnet.shapes import broadcast_shapes, is_static


def fuse_matmul_bias(graph: Graph) -> Graph:
    """add(matmul(x, W), b) -> matmul_bias(x, W, b) where the product has one reader."""
    readers = {node.id: len(users) for node, users in graph.consumers().items()}
    fetched = {node.id for node in graph.outputs}
    fused = 0

    def visit(node: Node):
        nonlocal fused
        if not isinstance(node.op, Add):
            return None
        for product, bias in (node.inputs, node.inputs[::-1]):
            if _fits(product, bias, node) and readers[product.id] == 1 \
                    and product.id not in fetched:
                fused += 1
                return make(MatmulBias(), (*product.inputs, bias), like=node)
        return None

    graph = rebuild(graph, visit)
    if fused:
        note(f"{plural(fused, 'matmul + bias')} fused")
    return graph


def _fits(product: Node, bias: Node, add: Node) -> bool:
    """A matmul whose output the bias broadcasts onto, all of one dtype."""
    return (isinstance(product.op, Matmul) and product.dtype == bias.dtype == add.dtype
            and add.shape == product.shape
            and broadcast_shapes(bias.shape, product.shape) == product.shape)


def contiguous_reshapes(graph: Graph) -> Graph:
    """reshape(transpose(x)) -> reshape(contiguous(transpose(x))) where the
    reshape would copy; one copy serves every reshape of that transpose."""
    copies: dict = {}

    def visit(node: Node):
        if not isinstance(node.op, Reshape) or not isinstance(node.inputs[0].op, Transpose):
            return None
        view = node.inputs[0]
        if not is_static(view.shape) or not _reshape_copies(view, node.op.shape):
            return None
        if view not in copies:
            copies[view] = make(Contiguous(), (view,), like=view, suffix="contiguous")
        return make(node.op, (copies[view],), like=node)

    graph = rebuild(graph, visit)
    if copies:
        note(f"{plural(len(copies), 'transposed array')} copied once into planned memory "
             "for the reshapes that read it")
    return graph


def _reshape_copies(view: Node, shape: tuple) -> bool:
    """Whether NumPy must copy to reshape `view` (a transpose of a C-ordered
    array) to `shape`; asked of a zero-stride stand-in, so nothing is allocated."""
    base = view.inputs[0].shape
    strides = [1] * len(base)
    for axis in range(len(base) - 2, -1, -1):
        strides[axis] = strides[axis + 1] * max(base[axis + 1], 1)
    stand_in = as_strided(np.zeros(1, np.int8), base, strides, writeable=False)
    try:
        np.reshape(stand_in.transpose(view.op.perm), shape, copy=False)
    except ValueError:
        return True
    return False
