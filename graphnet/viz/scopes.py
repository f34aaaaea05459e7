"""Name scopes as clusters, and collapsing scopes into single boxes.

A node named `dense_1/matmul` lives in scope `dense_1`; the diagram draws
each scope as a cluster. `collapse=["dense_1"]` (shell-style patterns such as
`"layer_*"` work too) or `depth=1` folds whole scopes into one box each, so a
100-layer model stays readable.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Placement:
    """Where a node is drawn: inside the cluster `cluster` (scope parts), and
    folded into the collapsed scope `box` (a scope path) unless that is None."""

    cluster: tuple
    box: str | None = None


def scope_parts(name: str) -> tuple:
    """`("block", "attn")` for `block/attn/matmul`."""
    return tuple(name.split("/")[:-1])


def place(name: str, collapse=(), depth: int | None = None) -> Placement:
    """The placement of the node called `name` under the collapse rules."""
    parts = scope_parts(name)
    for k in range(1, len(parts) + 1):
        scope = "/".join(parts[:k])
        if (depth is not None and k >= depth) or _matches(scope, collapse):
            return Placement(parts[:k - 1], scope)
    return Placement(parts)


def check_collapse_options(names: list, collapse, depth) -> tuple:
    """`collapse` as a tuple of patterns; a ValueError for a pattern that
    names no scope in the diagram, or for a depth below 1."""
    if depth is not None and (not isinstance(depth, int) or depth < 1):
        raise ValueError(f"depth must be a whole number >= 1 (1 draws each top-level scope "
                         f"as one box), not {depth!r}")
    patterns = (collapse,) if isinstance(collapse, str) else tuple(collapse or ())
    scopes = {"/".join(scope_parts(n)[:k]) for n in names
              for k in range(1, len(scope_parts(n)) + 1)}
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(s, pattern) for s in scopes):
            top = sorted({s.split("/")[0] for s in scopes})
            raise ValueError(f"collapse={pattern!r} matches no name scope in this diagram; "
                             f"its top-level scopes are {top}")
    return patterns


def common_prefix(paths: list) -> tuple:
    """The longest scope path that every one of `paths` starts with."""
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return tuple(prefix)


@dataclass
class Cluster:
    """One scope in the drawing: its items, fused-step groups and sub-scopes."""

    path: tuple
    items: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    children: dict = field(default_factory=dict)

    def at(self, path: tuple) -> Cluster:
        """The cluster for `path` below this one, created on first use."""
        cluster = self
        for depth, part in enumerate(path[len(self.path):], start=len(self.path)):
            if part not in cluster.children:
                cluster.children[part] = Cluster(path[:depth + 1])
            cluster = cluster.children[part]
        return cluster


def _matches(scope: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(scope, p) for p in patterns)
