"""Errors that graphnet raises for mistakes in user graphs and feeds."""


class GraphnetError(Exception):
    """Base class of every error graphnet raises on purpose."""


class ShapeError(GraphnetError, ValueError):
    """Shapes or dtypes that do not fit an op, found while the graph is built."""


class GraphError(GraphnetError, ValueError):
    """A malformed graph or fetch: a cycle, a non-node, a double assignment."""


class FeedError(GraphnetError, ValueError):
    """A placeholder left unfed, or fed a value of the wrong shape or dtype."""


class GradientError(GraphnetError, TypeError):
    """A gradient that does not exist, such as one through an integer-valued path."""
