"""draw(): formats, atomic writes, the missing-Graphviz path, notebook display."""

import os
import warnings

import pytest

import graphnet as gn
from graphnet.viz.render import write_atomic


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH on which no `dot` program can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_each_suffix_gives_its_format(mlp, tmp_path):
    assert gn.viz.draw(mlp.loss, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert gn.viz.draw(mlp.loss, tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    assert b"<svg" in gn.viz.draw(mlp.loss, str(tmp_path / "g.svg")).read_bytes()
    source = gn.viz.draw(mlp.loss, tmp_path / "g.dot").read_text()
    assert source == gn.viz.to_dot(mlp.loss).source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot", "g.pdf", "g.png", "g.svg"]


def test_an_unknown_suffix_names_the_formats(mlp, tmp_path):
    with pytest.raises(ValueError, match=r"\.svg, \.png, \.pdf, \.dot"):
        gn.viz.draw(mlp.loss, tmp_path / "g.jpeg")


def test_without_dot_the_source_is_written_and_the_error_says_how_to_install(
        mlp, tmp_path, no_dot):
    with pytest.raises(gn.viz.GraphvizNotFoundError) as caught:
        gn.viz.draw(mlp.loss, tmp_path / "g.svg")

    message = str(caught.value)
    assert "`dot` program was not found" in message
    assert "apt-get install graphviz" in message
    assert "brew install graphviz" in message
    assert "conda install -c conda-forge graphviz" in message
    assert str(tmp_path / "g.dot") in message
    assert (tmp_path / "g.dot").read_text() == gn.viz.to_dot(mlp.loss).source
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty-bin", "g.dot"]
    assert isinstance(caught.value, RuntimeError)


def test_without_dot_a_dot_file_can_still_be_written(mlp, tmp_path, no_dot):
    assert gn.viz.draw(mlp.loss, tmp_path / "g.dot").read_text().startswith("digraph {")


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "g.svg"
    path.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]


@pytest.mark.needs_dot
def test_nodes_and_plans_show_themselves_as_svg_in_notebooks(mlp):
    for target in (mlp.loss, gn.compile(mlp.loss)):
        bundle = target._repr_mimebundle_()
        assert "<svg" in bundle["image/svg+xml"]
        assert bundle["text/plain"] == repr(target)


@pytest.mark.needs_dot
def test_large_graphs_are_folded_in_notebooks(monkeypatch):
    from graphnet.viz import render

    x = gn.placeholder((None, 2), name="x")
    with gn.name_scope("block"):
        out = gn.relu(gn.tanh(x))
    monkeypatch.setattr(render, "NOTEBOOK_MAX_NODES", 2)
    assert "block" in out._repr_mimebundle_()["image/svg+xml"]
    assert "tanh" not in out._repr_mimebundle_()["image/svg+xml"]


def test_notebooks_without_dot_get_text_and_a_warning(mlp, no_dot):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = mlp.loss._repr_mimebundle_()
    assert bundle == {"text/plain": repr(mlp.loss)}
    assert "apt-get install graphviz" in str(caught[0].message)


@pytest.mark.needs_dot
def test_objects_with_a_to_dot_hook_can_show_themselves(mlp):
    class Model:
        def to_dot(self, **options):
            return gn.viz.to_dot(mlp.loss, **options)

        _repr_mimebundle_ = gn.viz.repr_mimebundle

    assert "<svg" in Model()._repr_mimebundle_()["image/svg+xml"]
