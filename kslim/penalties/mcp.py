"""The minimax concave penalty (MCP)."""

import keras
import numpy as np
from keras import ops

from kslim.penalties.base import Penalty


@keras.saving.register_keras_serializable(package="kslim")
class MCP(Penalty):
    """`lam * sum(phi(|x|))`, the minimax concave penalty, normalised.

    `phi(u) = u - u**2 / (2a)` for `u <= a` and `a / 2` beyond: slope 1 at 0
    (so `lam` means what it means for L1), tapering to 0 at `u = a`, so
    factors larger than `a` are not penalised at all. `lam * phi` is the
    standard MCP of Zhang with `lambda = lam` and `gamma = a / lam`; here `a`
    is in units of the scaling factor, so changing `lam` does not move the
    point where the penalty stops.

    Reference: Zhang, "Nearly Unbiased Variable Selection under Minimax
    Concave Penalty", Ann. Statist. 2010; Bui et al., "Improving Network
    Slimming with Nonconvex Regularization", IEEE Access 2021.

    Args:
        lam: float >= 0, the penalty weight (the slope at 0).
        a: float > 0, the factor size beyond which there is no penalty
            (default 1.0).

    Raises:
        ValueError: if `lam < 0` or `a <= 0`.

    Example:

    >>> kslim.penalties.MCP(lam=1e-4, a=1.0)(np.array([0.5, -2.0]))  # 8.75e-05
    """

    def __init__(self, lam=1e-4, a=1.0):
        super().__init__(lam=lam)
        a = float(a)
        if not np.isfinite(a) or a <= 0:
            raise ValueError(
                f"MCP got a={a}; a must be a finite number > 0 "
                "(the factor size beyond which the penalty is flat, e.g. 1.0)."
            )
        self.a = a

    def _phi(self, u):
        # Both branches are finite polynomials, so `where` is safe.
        return ops.where(u <= self.a, u - u * u / (2.0 * self.a), ops.full_like(u, self.a / 2.0))

    def _prox(self, x, eta):
        """Proximal operator of `step * self` at `x`: firm thresholding.

        With `eta = step * lam`: 0 for `|x| <= eta`,
        `sign(x) (|x| - eta) / (1 - eta / a)` for `eta < |x| <= a`, and `x`
        beyond.
        """
        if eta >= self.a:
            raise ValueError(
                f"MCP.prox needs step * lam < a, got step={eta / self.lam}, lam={self.lam}, a={self.a} "
                f"(step * lam = {eta}); lower the learning rate or lam, or raise a."
            )
        u = np.abs(x)
        firm = np.sign(x) * np.maximum(u - eta, 0.0) / (1.0 - eta / self.a)
        return np.where(u <= self.a, firm, x)

    def get_config(self):
        return {"lam": self.lam, "a": self.a}
