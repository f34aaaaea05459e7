"""Graphviz diagrams of graphs, gradients and plans; training-curve plots."""
