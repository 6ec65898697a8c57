"""The smooth (Huber) L1 penalty."""

import keras
import numpy as np
from keras import ops

from kslim.penalties.base import Penalty


@keras.saving.register_keras_serializable(package="kslim")
class SmoothL1(Penalty):
    """`lam * sum(huber_delta(|x|))`, L1 with its kink at 0 rounded off.

    `phi(u) = u**2 / (2 * delta)` for `u <= delta` and `u - delta / 2` beyond,
    so the penalty is L1 (slope `lam`) for factors larger than `delta` and
    quadratic near 0. Use it when training by plain gradient descent and the
    subgradient of L1 at 0 is unwanted; its gradient is continuous. It does not
    drive factors to exact zeros by gradient descent, so prune by threshold,
    or train with `kslim.callbacks.ProximalStep`, whose step shrinks small
    factors towards (but, for `delta > 0`, not exactly to) zero.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, sec. 3.1 (smooth-L1 to avoid the
    subgradient at 0).

    Args:
        lam: float >= 0, the penalty weight; the slope of the penalty beyond
            `delta`, as L1's `lam`.
        delta: float > 0, the width of the quadratic zone, in units of the
            scaling factor (default 1e-2).

    Raises:
        ValueError: if `lam < 0` or `delta <= 0`.

    Example:

    >>> kslim.penalties.SmoothL1(lam=1e-4, delta=1e-2)(np.array([0.5, -0.005]))  # 4.9625e-05
    """

    def __init__(self, lam=1e-4, delta=1e-2):
        super().__init__(lam=lam)
        delta = float(delta)
        if not np.isfinite(delta) or delta <= 0:
            raise ValueError(
                f"SmoothL1 got delta={delta}; delta must be a finite number > 0 "
                "(the width of the quadratic zone, e.g. 1e-2); use L1 for delta=0."
            )
        self.delta = delta

    def _phi(self, u):
        # Both branches are finite and smooth everywhere, so `where` is safe.
        return ops.where(u <= self.delta, u * u / (2.0 * self.delta), u - self.delta / 2.0)

    def _prox(self, x, eta):
        """Proximal operator of `step * self` at `x`.

        Inside the quadratic zone the factor is scaled by
        `delta / (delta + eta)`, outside it is soft-shifted by `eta`, with
        `eta = step * lam`.
        """
        inside = np.abs(x) <= self.delta + eta
        return np.where(inside, x * (self.delta / (self.delta + eta)), x - eta * np.sign(x))

    def get_config(self):
        return {"lam": self.lam, "delta": self.delta}
