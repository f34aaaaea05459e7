"""Known patterns rewritten into cheaper steps, around elementwise fusion.

fuse_cross_entropy (before elementwise fusion): a sparse softmax
cross-entropy and its gradient, `(softmax(logits) - one_hot(labels)) *
scale`, are computed from the same rows of logits by five steps (the loss,
the softmax, the one-hot, the difference times the scale, all with their own
passes over the rows). They become one `SparseSoftmaxCrossEntropyWithGrad`
step with two outputs: one loop per row under Numba.

fuse_matmul_bias: `x @ W + b` (a dense layer before its activation) as one
kernel. The product is written into the output buffer and the bias added
there in place: one step and one buffer instead of two. Elementwise fusion
already folds a bias add into its activation's kernel, so this takes what is
left (a network's logits, say), and only where the product has no other reader.

direct_convolutions (Numba backend): a convolution of one input channel
into a few, at stride 1, runs direct loops (graphnet/nn/conv.py) faster than
a patch matrix and skinny products; its Im2Col input is dropped, and with it
the patch matrix, which nothing else then reads.

contiguous_reshapes: a reshape of a transposed array (attention heads merged
back into features) cannot be a view, so NumPy allocates a copy each run,
and again for each reshape of the same transpose. The copy becomes one
`Contiguous` step per transpose, into a planned buffer.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from graphnet.compiler.ops import Contiguous, FusedOutput, MatmulBias
from graphnet.compiler.rewrite import Refusal, describe, log, make, note, plural, rebuild
from graphnet.graph import Graph, Node
from graphnet.nn.conv import Conv2D, Conv2DBackpropFilter, Im2Col, direct_convolution
from graphnet.nn.cross_entropy import SparseSoftmaxCrossEntropy, SparseSoftmaxCrossEntropyWithGrad
from graphnet.ops.activations import Softmax
from graphnet.ops.elementwise import Add, Mul, Sub
from graphnet.ops.linalg import Matmul
from graphnet.ops.shape import OneHot, Reshape, Transpose
from graphnet.shapes import broadcast_shapes, is_static


def fuse_cross_entropy(graph: Graph) -> Graph:
    """sparse_softmax_cross_entropy(l, y) and (softmax(l) - one_hot(y)) * s
    -> one step computing both, where s does not depend on the loss."""
    users, fetched = graph.consumers(), set(graph.outputs)
    matches, taken = [], set()
    for node in graph.nodes:
        found = _cross_entropy_grad(node, users, fetched)
        if found is None:
            continue
        logits, labels, scale, loss = found
        if loss is not None and scale is not None and _depends_on(scale, {loss}):
            log(Refusal(describe(node), describe(loss), "its scale is computed from the loss"))
            loss = None
        if loss in taken:   # a second gradient of one loss: computes it again
            loss = None
        taken |= {node} if loss is None else {node, loss}
        matches.append((node, loss, (logits, labels) if scale is None else (logits, labels, scale)))
    replace: dict = {}
    for node, loss, inputs in matches:
        if any(_depends_on(i, taken) for i in inputs):   # rare: keep the rewrite simple
            continue
        both = make(SparseSoftmaxCrossEntropyWithGrad(inputs[0].shape, inputs[0].dtype),
                    inputs, like=node)
        both.id = (node if loss is None else loss).id   # sorts where the loss did
        replace[node.id] = make(FusedOutput(1), (both,), like=node)
        if loss is not None:
            replace[node.id].id = node.id
            replace[loss.id] = make(FusedOutput(0), (both,), like=loss)
    if not replace:
        return graph
    graph = rebuild(graph, lambda node: replace.get(node.id))
    fused = [n for n in graph if isinstance(n.op, SparseSoftmaxCrossEntropyWithGrad)]
    losses = sum(isinstance(n.op, FusedOutput) and n.op.index == 0 and
                 isinstance(n.inputs[0].op, SparseSoftmaxCrossEntropyWithGrad) for n in graph)
    note(f"{plural(len(fused), 'sparse softmax cross-entropy gradient')} in one step each "
         f"(softmax, one_hot, subtract, multiply; {losses} with the loss too)")
    return graph


def _cross_entropy_grad(node: Node, users: dict, fetched: set):
    """(logits, labels, scale or None, loss node or None) when `node` is
    (softmax(l) - one_hot(y)) [* scale] of logits whose rows the loop reads."""
    scale, difference = None, node
    if isinstance(node.op, Sub) and node not in fetched and len(users[node]) == 1 and \
            _cross_entropy_grad(users[node][0], users, fetched) is not None:
        return None   # its one reader, `node * scale`, is the gradient to fuse
    if isinstance(node.op, Mul):
        for a, b in (node.inputs, node.inputs[::-1]):
            if isinstance(a.op, Sub) and len(users[a]) == 1 and a not in fetched:
                difference, scale = a, b
                break
        else:
            return None
    if not isinstance(difference.op, Sub):
        return None
    probs, hot = difference.inputs
    if not (isinstance(probs.op, Softmax) and isinstance(hot.op, OneHot)):
        return None
    logits, labels = probs.inputs[0], hot.inputs[0]
    if (probs.op.axis not in (-1, logits.ndim - 1) or hot.op.depth != logits.shape[-1]
            or hot.op.dtype != logits.dtype or node.shape != logits.shape
            or node.dtype != logits.dtype or labels.ndim != logits.ndim - 1
            or labels.dtype.kind not in "iu" or logits.dtype.kind != "f"):
        return None
    if scale is not None and not _scale_fits(scale, logits):
        return None
    loss = next((u for u in users[logits] if isinstance(u.op, SparseSoftmaxCrossEntropy)
                 and u.inputs[1] is labels), None)
    return logits, labels, scale, loss


def _scale_fits(scale: Node, logits: Node) -> bool:
    """A scale of the logits' dtype shaped (rows or 1, classes or 1), leading axes flattened."""
    if scale.dtype != logits.dtype or scale.ndim > logits.ndim:
        return False
    padded = (1,) * (logits.ndim - scale.ndim) + tuple(scale.shape)
    leading = padded[:-1]
    return (padded[-1] in (1, logits.shape[-1])
            and (all(d == 1 for d in leading) or
                 (leading == logits.shape[:-1] and is_static(leading))))


def _depends_on(node: Node, ancestors: set) -> bool:
    """True when node is one of `ancestors` or reads one, transitively."""
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if current in ancestors:
            return True
        if current not in seen:
            seen.add(current)
            stack.extend(current.inputs)
    return False


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


def direct_convolutions(graph: Graph, backend: str) -> Graph:
    """conv2d(x, w, im2col(x, w)) -> conv2d(x, w), and the same for the kernel
    gradient, where the numba backend's direct loops do without the patches."""
    if backend != "numba":
        return graph
    dropped = 0

    def visit(node: Node):
        nonlocal dropped
        if not isinstance(node.op, (Conv2D, Conv2DBackpropFilter)) or \
                not isinstance(node.inputs[-1].op, Im2Col):
            return None
        x, w = node.inputs[0], node.inputs[-2]
        if not direct_convolution(node.op, x.shape[3], w.shape[3]):
            return None
        dropped += isinstance(node.op, Conv2D)
        return make(node.op, node.inputs[:-1], like=node)

    graph = rebuild(graph, visit)
    if dropped:
        note(f"{plural(dropped, 'convolution')} of one channel into few without a patch "
             "matrix (direct loops)")
    return graph


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
