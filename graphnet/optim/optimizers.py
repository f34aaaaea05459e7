"""SGD, Momentum, Nesterov, RMSprop, Adagrad, Adam and AdamW.

Each follows Keras 3's published update rule (`keras.optimizers.X`), with
Keras' defaults; the docstrings state the rule for gradient g and
learning rate lr. All also take the base options: weight_decay, clipnorm,
clipvalue, global_clipnorm and name (see `Optimizer`).
"""

from __future__ import annotations

import numpy as np

from graphnet.graph import as_node
from graphnet.ops import cast, maximum, power, sqrt, square
from graphnet.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Gradient descent, with optional (Nesterov) momentum, as Keras 3's SGD.

        momentum == 0:   w = w - lr * g
        momentum > 0:    v = momentum * v - lr * g;  w = w + v
        nesterov=True:   v = momentum * v - lr * g;  w = w + momentum * v - lr * g

    The velocity v is the slot `<w>/<name>_velocity`, starting at zero.
    """

    default_name = "sgd"

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False,
                 **kwargs):
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1]; got {momentum}")
        super().__init__(learning_rate, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def build(self, var_list):
        if self.momentum:
            for var in var_list:
                self.add_slot(var, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        step = gradient * learning_rate
        if not self.momentum:
            return step
        velocity = self.get_slot(variable, "velocity")
        velocity = self.assign(velocity, velocity * self.momentum - step)
        if self.nesterov:
            return step - velocity * self.momentum
        return -velocity


class Momentum(SGD):
    """SGD with momentum 0.9 by default; `nesterov=True` for Nesterov momentum.

    The rule is SGD's (Keras 3): v = momentum * v - lr * g; w = w + v.
    """

    default_name = "momentum"

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, nesterov: bool = False,
                 **kwargs):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)


class Nesterov(SGD):
    """SGD with Nesterov momentum (Keras 3's SGD(nesterov=True)):

        v = momentum * v - lr * g;  w = w + momentum * v - lr * g
    """

    default_name = "nesterov"

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, **kwargs):
        super().__init__(learning_rate, momentum=momentum, nesterov=True, **kwargs)


class RMSprop(Optimizer):
    """RMSprop as Keras 3's RMSprop (Hinton, 2012), epsilon inside the square root:

        v = rho * v + (1 - rho) * g**2
        centered: a = rho * a + (1 - rho) * g;  denom = v - a**2 + eps
        else:     denom = v + eps
        step = lr * g / sqrt(denom)
        momentum > 0: m = momentum * m + step;  w = w - m
        else:         w = w - step

    Slots `velocity`, and `momentum` / `average_gradient` when used.
    """

    default_name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def build(self, var_list):
        for var in var_list:
            self.add_slot(var, "velocity")
            if self.momentum:
                self.add_slot(var, "momentum")
            if self.centered:
                self.add_slot(var, "average_gradient")

    def update_step(self, gradient, variable, learning_rate):
        rho = self.rho
        velocity = self.get_slot(variable, "velocity")
        velocity = self.assign(velocity, velocity * rho + square(gradient) * (1 - rho))
        if self.centered:
            average = self.get_slot(variable, "average_gradient")
            average = self.assign(average, average * rho + gradient * (1 - rho))
            denominator = velocity - square(average) + self.epsilon
        else:
            denominator = velocity + self.epsilon
        step = learning_rate * gradient / sqrt(denominator)
        if not self.momentum:
            return step
        momentum = self.get_slot(variable, "momentum")
        return self.assign(momentum, momentum * self.momentum + step)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011) as Keras 3's Adagrad:

        acc = acc + g**2;  w = w - lr * g / sqrt(acc + eps)

    The accumulator slot starts at `initial_accumulator_value`.
    """

    default_name = "adagrad"

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, **kwargs):
        if initial_accumulator_value < 0:
            raise ValueError(f"initial_accumulator_value must be >= 0; "
                             f"got {initial_accumulator_value}")
        super().__init__(learning_rate, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def build(self, var_list):
        for var in var_list:
            self.add_slot(var, "accumulator", self.initial_accumulator_value)

    def update_step(self, gradient, variable, learning_rate):
        accumulator = self.get_slot(variable, "accumulator")
        accumulator = self.assign_add(accumulator, square(gradient))
        return learning_rate * gradient / sqrt(accumulator + self.epsilon)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) with bias correction, as Keras 3's Adam.

    With t = iterations + 1 (the step being taken):

        m = m + (g - m) * (1 - beta_1)
        v = v + (g**2 - v) * (1 - beta_2)
        alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        w = w - alpha * m / (sqrt(v) + eps)

    This is the paper's efficient form (end of its Section 2): epsilon is
    "epsilon hat", added to sqrt(v) outside the square root, not to
    sqrt(v_hat) as in the paper's Algorithm 1 and PyTorch; the two agree
    when eps is negligible. `amsgrad=True` keeps v_hat = max(v_hat, v) and
    uses it in place of v. Slots `m`, `v` (and `vhat`).
    """

    default_name = "adam"

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        super().__init__(learning_rate, **kwargs)
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def build(self, var_list):
        for var in var_list:
            self.add_slot(var, "m")
            self.add_slot(var, "v")
            if self.amsgrad:
                self.add_slot(var, "vhat")

    def update_step(self, gradient, variable, learning_rate):
        t = cast(self.iterations + 1, variable.dtype)
        beta_1_power = power(as_node(np.asarray(self.beta_1, variable.dtype)), t)
        beta_2_power = power(as_node(np.asarray(self.beta_2, variable.dtype)), t)
        alpha = learning_rate * sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m = self.get_slot(variable, "m")
        v = self.get_slot(variable, "v")
        m = self.assign_add(m, (gradient - m) * (1 - self.beta_1))
        v = self.assign_add(v, (square(gradient) - v) * (1 - self.beta_2))
        if self.amsgrad:
            vhat = self.get_slot(variable, "vhat")
            v = self.assign(vhat, maximum(vhat, v))
        return m * alpha / (sqrt(v) + self.epsilon)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as Keras 3's AdamW:
    Adam's step plus `lr * weight_decay * w` subtracted from each parameter
    (the base `weight_decay` rule, here on by default at Keras' 0.004).
    """

    default_name = "adamw"

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay; use Adam for none")
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)
