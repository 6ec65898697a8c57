"""The transformed L1 (TL1) penalty."""

import keras
import numpy as np

from kslim.penalties.base import Penalty


@keras.saving.register_keras_serializable(package="kslim")
class TL1(Penalty):
    """`lam * sum((a + 1) |x| / (a + |x|))`, the transformed L1 penalty.

    TL1 interpolates between L0 (`a -> 0`) and L1 (`a -> inf`): it grows like
    L1 near 0 and saturates at `lam * (a + 1)` for large factors, so the
    important channels are barely penalised. The paper's formula is kept as
    the definition, so the slope at 0 is `lam * (a + 1) / a` (twice `lam` for
    the default `a = 1`), not `lam`; divide `lam` by `(a + 1) / a` to match
    an L1 run's pull on small factors.

    Reference: Zhang and Xin, "Minimization of Transformed L1 Penalty: Closed
    Form Representation and Iterative Thresholding Algorithms", Comm. Math.
    Sci. 2017 and Math. Program. 2018 (the thresholding); Bui et al.,
    "Improving Network Slimming with Nonconvex Regularization", IEEE Access
    2021.

    Args:
        lam: float >= 0, the penalty weight.
        a: float > 0, the shape parameter, in units of the scaling factor
            (default 1.0).

    Raises:
        ValueError: if `lam < 0` or `a <= 0`.

    Example:

    >>> kslim.penalties.TL1(lam=1e-4, a=1.0)(np.array([1.0, -1.0]))  # 2e-04
    """

    def __init__(self, lam=1e-4, a=1.0):
        super().__init__(lam=lam)
        a = float(a)
        if not np.isfinite(a) or a <= 0:
            raise ValueError(
                f"TL1 got a={a}; a must be a finite number > 0 "
                "(small a is close to L0, large a close to L1; Bui et al. use a=1)."
            )
        self.a = a

    def _phi(self, u):
        return (self.a + 1.0) * u / (self.a + u)

    def _prox(self, x, eta):
        """Proximal operator of `step * self` at `x`: TL1 thresholding.

        With `eta = step * lam`, the result is 0 for `|x| <= t`, where
        `t = eta (a + 1) / a` if `eta <= a**2 / (2 (a + 1))` and
        `t = sqrt(2 eta (a + 1)) - a / 2` otherwise; beyond `t` it is
        `sign(x) ((2/3)(a + |x|) cos(phi / 3) - 2a/3 + |x|/3)` with
        `phi = arccos(1 - 27 eta a (a + 1) / (2 (a + |x|)**3))`.
        """
        a = self.a
        u = np.abs(x)
        if eta <= a * a / (2.0 * (a + 1.0)):
            threshold = eta * (a + 1.0) / a
        else:
            threshold = np.sqrt(2.0 * eta * (a + 1.0)) - a / 2.0
        keep = u > threshold
        cos_arg = 1.0 - 27.0 * eta * a * (a + 1.0) / (2.0 * (a + u) ** 3)
        phi = np.arccos(np.clip(cos_arg, -1.0, 1.0))
        z = (2.0 / 3.0) * (a + u) * np.cos(phi / 3.0) - 2.0 * a / 3.0 + u / 3.0
        return np.where(keep, np.sign(x) * z, 0.0)

    def get_config(self):
        return {"lam": self.lam, "a": self.a}
