"""graphnet/scratch.py and the kept padded copies of graphnet/nn/windows.py."""

import numpy as np

from graphnet.nn.windows import pad_hw
from graphnet.scratch import kept


def test_the_same_temporary_is_the_same_array_each_run():
    scratch = {}
    first = kept(scratch, "rows", (3, 4), np.float32)
    first += 1
    assert kept(scratch, "rows", (3, 4), "float32") is first
    others = [kept(scratch, "rows", (4, 4), np.float32), kept(scratch, "rows", (3, 4), np.float64),
              kept(scratch, "cols", (3, 4), np.float32)]
    assert all(o is not first and not o.any() for o in others)


def test_without_a_dict_each_call_makes_fresh_zeros():
    a, b = kept(None, "rows", (2,), np.int32), kept(None, "rows", (2,), np.int32)
    assert a is not b and not a.any() and a.dtype == np.int32


def test_a_kept_padded_copy_keeps_its_border_across_runs():
    scratch, pads = {}, ((1, 0), (0, 2))
    for seed in range(3):
        x = np.random.default_rng(seed).standard_normal((2, 3, 3, 1)).astype(np.float32)
        padded = pad_hw(x, pads, -np.inf, scratch)
        np.testing.assert_array_equal(padded, pad_hw(x, pads, -np.inf))
    assert len(scratch) == 1
    assert pad_hw(x, ((0, 0), (0, 0)), 0, scratch) is x
