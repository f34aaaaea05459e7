"""Keras-style losses built from graph ops."""
