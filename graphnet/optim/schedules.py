"""Learning-rate schedules: graph nodes computed from the optimizer's step counter.

A schedule is a callable `schedule(step) -> node`, where `step` is the
optimizer's int64 `iterations` variable (the number of updates already
applied); pass one as `learning_rate` and `optimizer.learning_rate` is the
node it builds, so the current value can be fetched:

    lr = gn.optim.schedules.WarmupCosineDecay(1e-3, warmup_steps=100, decay_steps=900)
    opt = gn.optim.Adam(lr)
    sess.run(opt.learning_rate)

Formulas follow Keras 3 (`keras.optimizers.schedules`); StepDecay follows
PyTorch's StepLR. Values are float32. ReduceLROnPlateau is different: it is
driven from Python by a metric and sets a float learning rate's variable.
"""

from __future__ import annotations

import math

import numpy as np

from graphnet.graph import Node, as_node, name_scope
from graphnet.ops import cast, cos, floor, less, less_equal, minimum, power, where
from graphnet.serialization import Configurable

DTYPE = "float32"


class LearningRateSchedule(Configurable):
    """Base class: subclasses implement `__call__(step) -> scalar float32 node`."""

    config_kind = "schedules"

    name = "schedule"

    def __call__(self, step: Node) -> Node:
        raise NotImplementedError(f"{type(self).__name__} must implement __call__(step)")


def _float_step(step) -> Node:
    return cast(as_node(step), DTYPE)


def _scalar(value) -> Node:
    return as_node(np.asarray(value, DTYPE))


class Constant(LearningRateSchedule):
    """The same learning rate at every step."""

    def __init__(self, learning_rate: float):
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        return _scalar(self.learning_rate)


class StepDecay(LearningRateSchedule):
    """lr * gamma ** floor(step / step_size), PyTorch's StepLR."""

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1):
        _check_positive("step_size", step_size)
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def __call__(self, step):
        with name_scope("step_decay"):
            exponent = floor(_float_step(step) / _scalar(self.step_size))
            return power(_scalar(self.gamma), exponent) * self.initial_learning_rate


class PiecewiseConstantDecay(LearningRateSchedule):
    """values[0] while step <= boundaries[0], values[1] while step <= boundaries[1], ...,
    values[-1] after the last boundary (Keras' PiecewiseConstantDecay)."""

    def __init__(self, boundaries, values):
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay needs one more value than boundaries; "
                             f"got {len(boundaries)} boundaries and {len(values)} values")
        if list(boundaries) != sorted(boundaries):
            raise ValueError(f"boundaries must increase; got {list(boundaries)}")
        self.boundaries = [int(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step):
        with name_scope("piecewise_constant"):
            step = as_node(step)
            result = _scalar(self.values[-1])
            for bound, value in reversed(list(zip(self.boundaries, self.values[:-1]))):
                result = where(less_equal(step, bound), _scalar(value), result)
            return result


class ExponentialDecay(LearningRateSchedule):
    """lr * decay_rate ** (step / decay_steps); the exponent is floored when
    `staircase` (Keras' ExponentialDecay)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False):
        _check_positive("decay_steps", decay_steps)
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.decay_rate = float(decay_rate)
        self.staircase = bool(staircase)

    def __call__(self, step):
        with name_scope("exponential_decay"):
            exponent = _float_step(step) / _scalar(self.decay_steps)
            if self.staircase:
                exponent = floor(exponent)
            return power(_scalar(self.decay_rate), exponent) * self.initial_learning_rate


class CosineDecay(LearningRateSchedule):
    """Cosine decay with optional linear warmup, as Keras 3's CosineDecay.

    Without warmup: lr * ((1 - alpha) * 0.5 * (1 + cos(pi * t / decay_steps)) + alpha)
    with t = min(step, decay_steps). With `warmup_target` and `warmup_steps`, the
    rate first rises linearly from `initial_learning_rate` to `warmup_target`
    over `warmup_steps`, then decays from `warmup_target` over `decay_steps`.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 warmup_target: float | None = None, warmup_steps: int = 0):
        _check_positive("decay_steps", decay_steps)
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0; got {warmup_steps}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.warmup_target = None if warmup_target is None else float(warmup_target)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        with name_scope("cosine_decay"):
            step = _float_step(step)
            if self.warmup_target is None:
                return self._decay(minimum(step, self.decay_steps), self.initial_learning_rate)
            step = minimum(step, self.decay_steps + self.warmup_steps)
            decayed = self._decay(step - self.warmup_steps, self.warmup_target)
            if self.warmup_steps == 0:
                return decayed
            return where(less(step, self.warmup_steps), self._warmup(step), decayed)

    def _decay(self, step: Node, peak: float) -> Node:
        fraction = step / _scalar(self.decay_steps)
        cosine = (cos(fraction * math.pi) + 1.0) * 0.5
        return (cosine * (1.0 - self.alpha) + self.alpha) * peak

    def _warmup(self, step: Node) -> Node:
        fraction = step / _scalar(self.warmup_steps)
        return fraction * (self.warmup_target - self.initial_learning_rate) + \
            self.initial_learning_rate


class WarmupCosineDecay(CosineDecay):
    """Linear warmup from `initial_learning_rate` to `peak_learning_rate` over
    `warmup_steps`, then cosine decay to `alpha * peak` over `decay_steps`."""

    def __init__(self, peak_learning_rate: float, warmup_steps: int, decay_steps: int,
                 alpha: float = 0.0, initial_learning_rate: float = 0.0):
        super().__init__(initial_learning_rate, decay_steps, alpha,
                         warmup_target=peak_learning_rate, warmup_steps=warmup_steps)


def _check_positive(name: str, value):
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")


# ------------------------------------------------------- driven from Python


class ReduceLROnPlateau:
    """Multiply the learning rate by `factor` when a metric stops improving.

    Keras' ReduceLROnPlateau rule, driven from Python: call `update(sess,
    value)` once per epoch with the monitored metric (the model API's callback
    does); after `patience` epochs without an improvement of more than
    `min_delta`, the optimizer's learning-rate variable is set to
    max(lr * factor, min_lr), then `cooldown` epochs pass before counting
    again. The optimizer needs a float learning rate (a variable), not a
    schedule.

        plateau = gn.optim.schedules.ReduceLROnPlateau(opt, factor=0.5, patience=2)
        for epoch in range(epochs):
            ...
            plateau.update(sess, val_loss)
    """

    def __init__(self, optimizer, factor: float = 0.1, patience: int = 10, mode: str = "min",
                 min_delta: float = 1e-4, cooldown: int = 0, min_lr: float = 0.0):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1); got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max'; got {mode!r}")
        optimizer.learning_rate_variable()  # fail now, not at the first plateau
        self.optimizer = optimizer
        self.factor, self.patience, self.mode = float(factor), int(patience), mode
        self.min_delta, self.cooldown, self.min_lr = float(min_delta), int(cooldown), float(min_lr)
        self.reset()

    def reset(self):
        """Forget the best value and the counters."""
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def improved(self, value: float) -> bool:
        """Whether `value` beats the best so far by more than min_delta."""
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, sess, value: float) -> float:
        """Record one epoch's metric; lower the rate on a plateau. Returns the rate in use."""
        value = float(value)
        lr = self.optimizer.get_learning_rate(sess)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(value):
            self.best = value
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience and lr > np.float32(self.min_lr):
                lr = max(lr * self.factor, self.min_lr)
                self.optimizer.set_learning_rate(sess, lr)
                self.cooldown_counter = self.cooldown
                self.wait = 0
        return lr
