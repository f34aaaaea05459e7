"""The compiler's passes: plain `Graph -> Graph` functions, one module per family."""

from graphnet.compiler.passes.arena import arena_updates
from graphnet.compiler.passes.cse import cse
from graphnet.compiler.passes.fold import fold_constants
from graphnet.compiler.passes.fuse import fuse_elementwise
from graphnet.compiler.passes.patterns import (
    contiguous_reshapes,
    direct_convolutions,
    fuse_cross_entropy,
    fuse_matmul_bias,
)
from graphnet.compiler.passes.prune import prune
from graphnet.compiler.passes.shapes import specialize, static_shapes
from graphnet.compiler.passes.simplify import simplify

__all__ = ["arena_updates", "contiguous_reshapes", "cse", "direct_convolutions",
           "fold_constants", "fuse_cross_entropy", "fuse_elementwise", "fuse_matmul_bias", "prune",
           "simplify", "specialize", "static_shapes"]
