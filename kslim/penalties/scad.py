"""The smoothly clipped absolute deviation (SCAD) penalty."""

import keras
import numpy as np
from keras import ops

from kslim.penalties.base import Penalty


@keras.saving.register_keras_serializable(package="kslim")
class SCAD(Penalty):
    """`lam * sum(phi(|x|))`, the SCAD penalty, normalised to slope 1 at 0.

    With `b = knee`: `phi(u) = u` for `u <= b` (L1 with weight `lam`), then
    `(2 a b u - u**2 - b**2) / (2 (a - 1) b)` for `b < u <= a b`, whose slope
    falls linearly to 0, and the constant `(a + 1) b / 2` beyond, so factors
    larger than `a * knee` are not penalised. `lam * phi` equals
    `(lam / b)` times Fan and Li's SCAD with `lambda = b` and their `a`; both
    `knee` and `a * knee` are in units of the scaling factor.

    Reference: Fan and Li, "Variable Selection via Nonconcave Penalized
    Likelihood and its Oracle Properties", JASA 2001 (a = 3.7); Bui et al.,
    "Improving Network Slimming with Nonconvex Regularization", IEEE Access
    2021.

    Args:
        lam: float >= 0, the penalty weight (the slope at 0).
        a: float > 2, where the penalty stops, in multiples of `knee`
            (default 3.7, Fan and Li's choice).
        knee: float > 0, the factor size up to which the penalty is L1
            (default 0.1).

    Raises:
        ValueError: if `lam < 0`, `a <= 2` or `knee <= 0`.

    Example:

    >>> kslim.penalties.SCAD(lam=1e-4, a=3.7, knee=0.1)(np.array([0.05, -1.0]))  # 2.85e-05
    """

    def __init__(self, lam=1e-4, a=3.7, knee=0.1):
        super().__init__(lam=lam)
        a = float(a)
        knee = float(knee)
        if not np.isfinite(a) or a <= 2:
            raise ValueError(
                f"SCAD got a={a}; a must be a finite number > 2 (Fan and Li use 3.7)."
            )
        if not np.isfinite(knee) or knee <= 0:
            raise ValueError(
                f"SCAD got knee={knee}; knee must be a finite number > 0 "
                "(the factor size up to which SCAD is L1, e.g. 0.1)."
            )
        self.a = a
        self.knee = knee

    def _phi(self, u):
        a, b = self.a, self.knee
        # All three branches are finite polynomials, so `where` is safe.
        middle = (2.0 * a * b * u - u * u - b * b) / (2.0 * (a - 1.0) * b)
        flat = ops.full_like(u, (a + 1.0) * b / 2.0)
        return ops.where(u <= b, u, ops.where(u <= a * b, middle, flat))

    def _prox(self, x, eta):
        """Proximal operator of `step * self` at `x`: SCAD thresholding.

        With `eta = step * lam` and `b = knee`: soft thresholding
        `sign(x) max(|x| - eta, 0)` for `|x| <= b + eta`, then
        `sign(x) ((a - 1) b |x| - a b eta) / ((a - 1) b - eta)` for
        `b + eta < |x| <= a b`, and `x` beyond. This is Fan and Li's
        thresholding rescaled to this normalisation (it reduces to theirs for
        `eta = b`); it is the unique minimiser when `eta < (a - 1) b`, where
        the problem is strongly convex.
        """
        a, b = self.a, self.knee
        if eta >= (a - 1.0) * b:
            raise ValueError(
                f"SCAD.prox needs step * lam < (a - 1) * knee, got step={eta / self.lam}, lam={self.lam}, "
                f"a={a}, knee={b} (step * lam = {eta} >= {(a - 1.0) * b}); lower the learning "
                "rate or lam, or raise knee or a."
            )
        if eta == 0.0:
            return x.copy()
        u = np.abs(x)
        soft = np.maximum(u - eta, 0.0)
        middle = ((a - 1.0) * b * u - a * b * eta) / ((a - 1.0) * b - eta)
        z = np.where(u <= b + eta, soft, np.where(u <= a * b, middle, u))
        return np.sign(x) * z

    def get_config(self):
        return {"lam": self.lam, "a": self.a, "knee": self.knee}
