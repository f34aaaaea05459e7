"""fuse_matmul_bias: `x @ W + b` (a dense layer before its activation) as one kernel.

The product is written into the output buffer and the bias added there in
place: one step and one buffer instead of two. It runs after elementwise
fusion, which already folds a bias add into its activation's kernel, so it
takes what is left (a network's logits, say), and only where the product
has no other reader.
"""

from __future__ import annotations

from graphnet.compiler.ops import MatmulBias
from graphnet.compiler.rewrite import make, note, plural, rebuild
from graphnet.graph import Graph, Node
from graphnet.ops.elementwise import Add
from graphnet.ops.linalg import Matmul
from graphnet.shapes import broadcast_shapes


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
