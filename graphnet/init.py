"""Initial values for variables: `gn.variable(gn.init.glorot_uniform((784, 10), seed=0))`.

Each function returns a NumPy array of `shape` drawn from the given seed, or
from graphnet's global generator (`gn.random.seed`) when seed is None.
"""

from __future__ import annotations

import math

import numpy as np

from graphnet import random


def zeros(shape, dtype="float32", seed=None) -> np.ndarray:
    return np.zeros(shape, dtype)


def ones(shape, dtype="float32", seed=None) -> np.ndarray:
    return np.ones(shape, dtype)


def constant(shape, value=0.0, dtype="float32", seed=None) -> np.ndarray:
    return np.full(shape, value, dtype)


def uniform(shape, low=-0.05, high=0.05, seed=None, dtype="float32") -> np.ndarray:
    return random.generator(seed).uniform(low, high, shape).astype(dtype)


def normal(shape, mean=0.0, stddev=0.05, seed=None, dtype="float32") -> np.ndarray:
    return random.generator(seed).normal(mean, stddev, shape).astype(dtype)


def truncated_normal(shape, mean=0.0, stddev=0.05, seed=None, dtype="float32") -> np.ndarray:
    """Normal values redrawn until within two standard deviations of the mean."""
    rng = random.generator(seed)
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2
    return (mean + stddev * values).astype(dtype)


def fans(shape) -> tuple:
    """(fan_in, fan_out); for conv kernels (kh, kw, in, out) the window counts too."""
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def variance_scaling(shape, scale=1.0, mode="fan_in", distribution="truncated_normal",
                     seed=None, dtype="float32") -> np.ndarray:
    """Values with variance scale / fan, the rule behind Glorot, He and LeCun."""
    fan_in, fan_out = fans(shape)
    fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
    variance = scale / max(1.0, fan)
    if distribution == "uniform":
        limit = math.sqrt(3 * variance)
        return uniform(shape, -limit, limit, seed, dtype)
    if distribution == "normal":
        return normal(shape, 0.0, math.sqrt(variance), seed, dtype)
    # 0.8796... is the standard deviation of a unit normal truncated at +-2.
    return truncated_normal(shape, 0.0, math.sqrt(variance) / 0.87962566103423978, seed, dtype)


def glorot_uniform(shape, seed=None, dtype="float32") -> np.ndarray:
    return variance_scaling(shape, 1.0, "fan_avg", "uniform", seed, dtype)


def glorot_normal(shape, seed=None, dtype="float32") -> np.ndarray:
    return variance_scaling(shape, 1.0, "fan_avg", "truncated_normal", seed, dtype)


def he_uniform(shape, seed=None, dtype="float32") -> np.ndarray:
    return variance_scaling(shape, 2.0, "fan_in", "uniform", seed, dtype)


def he_normal(shape, seed=None, dtype="float32") -> np.ndarray:
    return variance_scaling(shape, 2.0, "fan_in", "truncated_normal", seed, dtype)


def lecun_uniform(shape, seed=None, dtype="float32") -> np.ndarray:
    return variance_scaling(shape, 1.0, "fan_in", "uniform", seed, dtype)


def lecun_normal(shape, seed=None, dtype="float32") -> np.ndarray:
    return variance_scaling(shape, 1.0, "fan_in", "truncated_normal", seed, dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal


def orthogonal(shape, gain=1.0, seed=None, dtype="float32") -> np.ndarray:
    """A (semi-)orthogonal matrix over the last axis versus the rest."""
    rows, cols = math.prod(shape[:-1]), shape[-1]
    a = random.generator(seed).standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    q = q if rows >= cols else q.T
    return (gain * q[:rows, :cols]).reshape(shape).astype(dtype)


_BY_NAME = {
    "zeros": zeros, "ones": ones, "constant": constant, "uniform": uniform, "normal": normal,
    "truncated_normal": truncated_normal, "glorot_uniform": glorot_uniform,
    "glorot_normal": glorot_normal, "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal, "he_uniform": he_uniform, "he_normal": he_normal,
    "lecun_uniform": lecun_uniform, "lecun_normal": lecun_normal, "orthogonal": orthogonal,
}


def get(identifier):
    """An initializer by name (`"glorot_uniform"`) or a callable passed through."""
    if callable(identifier):
        return identifier
    try:
        return _BY_NAME[identifier]
    except KeyError:
        raise ValueError(f"unknown initializer {identifier!r}; valid names: "
                         f"{', '.join(sorted(_BY_NAME))}") from None
