"""Positions of extreme values (argmax, argmin), driven by one table."""

from functools import partial

import numpy as np
import pytest

import graphnet as gn

from .optable import Inputs, OpCase, forward_params, run_forward

R = Inputs(seed=7)
TIES = np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]])

CASES = [
    OpCase(op, partial(getattr(gn, op), axis=axis), [x], partial(ref, axis=axis), label,
           grad=False)
    for op, ref in (("argmax", np.argmax), ("argmin", np.argmin))
    for x, axis, label in ((R.normal(2, 3, 4), -1, "axis=-1"), (R.normal(2, 3, 4), 0, "axis=0"),
                           (TIES, 1, "ties take the first"), (R.ints(0, 9, 5), 0, "int 1-D"))
]


@pytest.mark.parametrize("case, dtype, dynamic", forward_params(CASES))
def test_forward(case, dtype, dynamic):
    run_forward(case, dtype, dynamic)


def test_argmax_is_not_differentiable():
    x = gn.placeholder((3,), "float64")
    with pytest.raises(gn.GradientError, match="integer-valued"):
        gn.gradients(gn.cast(gn.argmax(x), "float64"), x)
