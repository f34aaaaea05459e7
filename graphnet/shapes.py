"""Static shapes: tuples of ints with None for sizes known only at run time."""

from __future__ import annotations

import numpy as np

from graphnet.errors import ShapeError

Shape = tuple  # tuple[int | None, ...]


def format_shape(shape: Shape) -> str:
    """`(None, 784)` as users write it; `()` for scalars."""
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting over static shapes; None matches any size.

    A None against a known size n > 1 gives n (the run-time check is NumPy's);
    None against 1 or None stays None.
    """
    rank = max(len(s) for s in shapes)
    out = []
    for axis in range(rank):
        dims = [s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0]
        known = {d for d in dims if d is not None and d != 1}
        if len(known) > 1:
            raise ShapeError(
                "shapes " + ", ".join(format_shape(s) for s in shapes)
                + f" do not broadcast: sizes {sorted(known)} meet on one axis")
        if known:
            out.append(known.pop())
        elif any(d is None for d in dims):
            out.append(None)
        else:
            out.append(1)
    return tuple(out)


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """A possibly negative axis as a non-negative index into a rank-`rank` shape."""
    if not -rank <= axis < rank:
        raise ShapeError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def normalize_axes(axis, rank: int) -> tuple:
    """None, an int or a sequence of ints as a sorted tuple of distinct axes."""
    if axis is None:
        return tuple(range(rank))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = tuple(sorted({normalize_axis(int(a), rank) for a in axes}))
    if len(out) != len(axes):
        raise ShapeError(f"repeated axis in {axis}")
    return out


def is_static(shape: Shape) -> bool:
    """True when every size is known."""
    return all(d is not None for d in shape)


def num_elements(shape: Shape):
    """Product of the sizes, or None when any is unknown."""
    return int(np.prod(shape, dtype=np.int64)) if is_static(shape) else None


def check_value_shape(value_shape: tuple, shape: Shape) -> bool:
    """True when a concrete shape matches a static one (None matches anything)."""
    if len(value_shape) != len(shape):
        return False
    for d, v in zip(shape, value_shape):   # a loop, not all(...): every feed of every run
        if d is not None and d != v:
            return False
    return True
