"""Building blocks of the hand-written NumPy trainers: the bar graphnet's
compiler has to beat ("the best a NumPy plan can do").

Habits that make NumPy fast, all used here: every array preallocated and
written with `out=`; all parameters in ONE flat buffer (gradients, Adam's m
and v likewise), so the optimizer is a dozen ufunc calls over the whole model
instead of a dozen per tensor; the flat update run in cache-sized chunks when
the model is large; softmax and cross-entropy fused, with the gradient
`(softmax - onehot) / batch` written in place.

The update rules are graphnet's own (Keras 3's Adam, epsilon outside the
square root), so the trainers compute the same numbers as graphnet.
"""

from __future__ import annotations

import math

import numpy as np

#: Chunk of the flat Adam update, in elements: 128 KiB of float32, so the
#: chunk of g, m, v, w and the scratch buffer stay in L2 between passes.
ADAM_CHUNK = 32768


class FlatParams:
    """Parameters, gradients and Adam slots, each one flat float32 buffer.

        params = FlatParams([(784, 128), (128,), ...])
        w, b = params.values          # views into params.theta
        gw, gb = params.grads         # views into params.grad
        params.adam_step()            # theta -= Adam step, in place

    Measured on 2-core machines: chunking pays on the wide MLP (1.86M
    parameters) and costs on small models, so small models run whole.
    """

    def __init__(self, shapes, lr=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 chunk: int | None = None):
        sizes = [math.prod(s) for s in shapes]
        self.size = sum(sizes)
        self.theta = np.zeros(self.size, np.float32)
        self.grad = np.zeros(self.size, np.float32)
        self.m = np.zeros(self.size, np.float32)
        self.v = np.zeros(self.size, np.float32)
        offsets = np.cumsum([0] + sizes)
        spans = list(zip(offsets[:-1], offsets[1:], shapes, strict=True))
        self.values = [self.theta[a:b].reshape(s) for a, b, s in spans]
        self.grads = [self.grad[a:b].reshape(s) for a, b, s in spans]
        self.lr, self.beta_1, self.beta_2, self.epsilon = lr, beta_1, beta_2, epsilon
        if chunk is None:
            chunk = self.size if self.size <= 4 * ADAM_CHUNK else ADAM_CHUNK
        self.chunks = [slice(a, min(a + chunk, self.size)) for a in range(0, self.size, chunk)]
        self.scratch = np.empty(min(chunk, self.size), np.float32)
        self.t = 0

    def set(self, arrays):
        """Load parameter values and zero the optimizer state."""
        for view, value in zip(self.values, arrays, strict=True):
            np.copyto(view, value)
        self.m.fill(0)
        self.v.fill(0)
        self.t = 0

    def adam_step(self):
        """One Adam step over every parameter, graphnet's (Keras 3's) rule

            m += (g - m)(1 - b1);  v += (g^2 - v)(1 - b2)
            w -= alpha m / (sqrt(v) + eps),  alpha = lr sqrt(1 - b2^t) / (1 - b1^t)

        in 10 passes instead of 12: the buffers hold m / (1 - b1) and
        v / (1 - b2), whose updates are m = b1 m + g and v = b2 v + g^2, and
        the constant factors move into alpha and eps (same values up to
        rounding)."""
        self.t += 1
        b1, b2 = self.beta_1, self.beta_2
        alpha = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        alpha *= (1 - b1) / math.sqrt(1 - b2)
        eps = self.epsilon / math.sqrt(1 - b2)
        for part in self.chunks:
            g, m, v, w = self.grad[part], self.m[part], self.v[part], self.theta[part]
            tmp = self.scratch[:len(g)]
            np.multiply(m, b1, out=m)
            np.add(m, g, out=m)
            np.multiply(g, g, out=tmp)
            np.multiply(v, b2, out=v)
            np.add(v, tmp, out=v)
            np.sqrt(v, out=tmp)
            np.add(tmp, eps, out=tmp)
            np.divide(m, tmp, out=tmp)
            np.multiply(tmp, alpha, out=tmp)
            np.subtract(w, tmp, out=w)


class SoftmaxCrossEntropy:
    """Mean sparse softmax cross-entropy of (batch, classes) logits, fused
    with its gradient: `forward` returns the loss and leaves
    d loss / d logits = (softmax - onehot) / batch in `self.grad`.
    Overwrites the logits (shifted by their row maximum)."""

    def __init__(self, batch: int, classes: int):
        self.batch = batch
        self.grad = np.empty((batch, classes), np.float32)
        self.row_max = np.empty((batch, 1), np.float32)
        self.row_sum = np.empty((batch, 1), np.float32)
        self.log_sum = np.empty((batch, 1), np.float32)
        self.row_start = np.arange(batch, dtype=np.intp) * classes
        self.index = np.empty(batch, np.intp)
        self.picked = np.empty(batch, np.float32)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        n, p = self.batch, self.grad
        np.max(logits, axis=1, keepdims=True, out=self.row_max)
        np.subtract(logits, self.row_max, out=logits)
        np.exp(logits, out=p)
        np.sum(p, axis=1, keepdims=True, out=self.row_sum)
        np.add(self.row_start, labels, out=self.index)            # flat index of each label
        # mode="clip": with out= and the default "raise", take buffers a copy
        np.take(logits.reshape(-1), self.index, out=self.picked, mode="clip")
        np.log(self.row_sum, out=self.log_sum)
        loss = (float(self.log_sum.sum()) - float(self.picked.sum())) / n
        # gradient: softmax / n, then -1/n at each label
        np.multiply(self.row_sum, n, out=self.row_sum)
        np.divide(p, self.row_sum, out=p)
        flat = p.reshape(-1)
        np.take(flat, self.index, out=self.picked, mode="clip")
        np.subtract(self.picked, 1 / n, out=self.picked)
        np.put(flat, self.index, self.picked, mode="clip")
        return loss
