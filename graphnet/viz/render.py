"""`draw`: render a diagram to a file with Graphviz's `dot`, and the SVG that
notebooks show for nodes and plans.

Without the `dot` program nothing can be rendered; `draw` then still writes
the `.dot` source next to the requested file and raises an error that says
how to install Graphviz. It never fails silently.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import warnings

import graphviz

from graphnet.compiler.plan import Plan
from graphnet.errors import GraphnetError
from graphnet.graph import Graph, Node
from graphnet.viz.targets import to_dot

#: Suffixes draw understands; `.dot` and `.gv` write the source without rendering.
FORMATS = ("svg", "png", "pdf", "dot", "gv")

INSTALL_HELP = (
    "Install Graphviz (the `dot` program; the `graphviz` Python package alone is not "
    "enough): Debian/Ubuntu `sudo apt-get install graphviz`, macOS `brew install graphviz`, "
    "conda `conda install -c conda-forge graphviz`.")

#: Diagrams shown in a notebook fold scopes (depth=1) above this many nodes.
NOTEBOOK_MAX_NODES = 200


class GraphvizNotFoundError(GraphnetError, RuntimeError):
    """The Graphviz `dot` program is not installed (or not on PATH)."""


def draw(target, path, **options) -> pathlib.Path:
    """Render `target` to `path`; the suffix picks the format (.svg, .png, .pdf, .dot).

    `options` are those of `gn.viz.to_dot` (show_grads, collapse, depth,
    show_buffers, show_memory, legend, title, rankdir). Returns the path written.

        >>> gn.viz.draw(loss, "loss.svg", show_grads=True)
    """
    path = pathlib.Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot draw to '{path}': the suffix picks the format, one of "
                         f"{', '.join('.' + f for f in FORMATS)}")
    diagram = to_dot(target, **options)
    source = diagram.source.encode("utf-8")
    if fmt in ("dot", "gv"):
        write_atomic(path, source)
        return path
    try:
        data = diagram.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        dot_path = path.with_suffix(".dot")
        write_atomic(dot_path, source)
        raise GraphvizNotFoundError(
            f"cannot render '{path}': the Graphviz `dot` program was not found on PATH. "
            f"The diagram source was written to '{dot_path}'; once Graphviz is installed, "
            f"`dot -T{fmt} {dot_path} -o {path}` renders it. {INSTALL_HELP}") from None
    except graphviz.CalledProcessError as err:
        stderr = (err.stderr or b"").decode("utf-8", "replace").strip()
        raise RuntimeError(f"Graphviz `dot` failed to render '{path}': {stderr}") from None
    write_atomic(path, data)
    return path


def write_atomic(path: pathlib.Path, data: bytes):
    """Write `data` to `path` via a temporary file in the same folder and a
    rename, so a reader never sees half a file."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with 0o666 lets the umask decide the mode, as a plain open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def repr_mimebundle(target, include=None, exclude=None) -> dict:
    """Jupyter's rich display: the target's diagram as SVG, plus its repr.

    Large graphs are drawn with depth=1 so the notebook stays responsive.
    Without Graphviz the text form is shown with a warning saying why.
    Models can bind it: `Model._repr_mimebundle_ = gn.viz.repr_mimebundle`
    (with a `to_dot(**options)` method to say what to draw).
    """
    text = repr(target)
    options = {"depth": 1} if _size(target) > NOTEBOOK_MAX_NODES else {}
    try:
        svg = to_dot(target, **options).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        warnings.warn(f"no diagram: the Graphviz `dot` program was not found. {INSTALL_HELP}",
                      stacklevel=2)
        return {"text/plain": text}
    return {"image/svg+xml": svg, "text/plain": text}


def _size(target) -> int:
    """How many nodes a diagram of `target` holds (0 when only its hook knows)."""
    if isinstance(target, Plan):
        return len(target.graph)
    if isinstance(target, Node):
        return len(Graph([target]))
    return 0
