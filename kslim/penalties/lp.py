"""The l_p quasi-norm penalty, 0 < p < 1."""

import keras
import numpy as np
from keras import ops

from kslim.penalties.base import Penalty

_NEWTON_MAX_ITERATIONS = 100


@keras.saving.register_keras_serializable(package="kslim")
class Lp(Penalty):
    """`lam * sum(|x|**p)`, 0 < p < 1: a nonconvex, sparser L1.

    Use it instead of L1 when L1 shrinks the important channels too much:
    `|x|**p` grows slowly for large factors, so it penalises them less while
    still pushing small ones to zero. Its slope at 0 is infinite; the
    gradient is defined as 0 at `x = 0` (subgradient convention
    `sign(0) = 0`), so a zero factor stays finite under gradient descent.
    For exact zeros, train with `kslim.callbacks.ProximalStep`.

    Reference: Bui, Park, Xin et al., "Improving Network Slimming with
    Nonconvex Regularization", IEEE Access 2021 (p = 1/2 and 3/4); Xu, Chang,
    Xu and Zhang, "L_{1/2} Regularization: A Thresholding Representation
    Theory and a Fast Solver", IEEE TNNLS 2012 (the half thresholding).

    Args:
        lam: float >= 0, the penalty weight (same scale as L1's `lam`:
            both penalties equal `lam` at `|x| = 1`).
        p: float in (0, 1), the exponent (default 0.5).

    Raises:
        ValueError: if `lam < 0` or `p` is not in (0, 1).

    Example:

    >>> kslim.penalties.Lp(lam=1e-4, p=0.5)(np.array([0.25, -0.04]))  # 7e-05
    """

    def __init__(self, lam=1e-4, p=0.5):
        super().__init__(lam=lam)
        p = float(p)
        if not (0.0 < p < 1.0):
            raise ValueError(
                f"Lp got p={p}; p must be in (0, 1) (Bui et al. use 0.5 and 0.75); "
                "use kslim.penalties.L1 for p=1."
            )
        self.p = p

    def _phi(self, u):
        # u**p has an infinite derivative at 0, and `where` back-propagates
        # through both branches, so the power is taken of a safe substitute.
        positive = u > 0
        safe = ops.where(positive, u, ops.ones_like(u))
        return ops.where(positive, ops.power(safe, self.p), ops.zeros_like(u))

    def _prox(self, x, eta):
        """Proximal operator of `step * self` at `x`.

        For `p = 0.5` this is the closed-form half thresholding of Xu et al.
        For other `p` it is computed exactly (to float64 precision): with
        `u = |x|` and `eta = step * lam`, a nonzero minimiser solves
        `z - u + eta * p * z**(p - 1) = 0`. The left side is convex in `z > 0`
        with its minimum at `z0 = (eta * p * (1 - p))**(1 / (2 - p))`, so the
        candidate is its larger root, found by Newton's method started at
        `u` (monotone from the right), and exists only when `u` reaches
        `z0 + eta * p * z0**(p - 1)`. The candidate is kept when its objective
        is lower than that of `z = 0`; otherwise the result is 0.
        """
        if self.p == 0.5:
            return _half_threshold(x, eta)
        return np.sign(x) * _lp_threshold(np.abs(x), eta, self.p)

    def get_config(self):
        return {"lam": self.lam, "p": self.p}


def _half_threshold(x, eta):
    """Xu et al.'s half thresholding for `0.5 (z - x)**2 + eta |z|**0.5`."""
    # Xu et al. minimise (z - x)**2 + mu |z|**0.5, i.e. mu = 2 eta.
    mu = 2.0 * eta
    u = np.abs(x)
    keep = u > (54.0 ** (1.0 / 3.0) / 4.0) * mu ** (2.0 / 3.0)
    safe = np.where(keep, u, 1.0)
    phi = np.arccos(np.clip((mu / 8.0) * (safe / 3.0) ** -1.5, -1.0, 1.0))
    z = (2.0 / 3.0) * safe * (1.0 + np.cos(2.0 * np.pi / 3.0 - 2.0 * phi / 3.0))
    return np.where(keep, np.sign(x) * z, 0.0)


def _lp_threshold(u, eta, p):
    """Minimiser over `z >= 0` of `0.5 (z - u)**2 + eta z**p`, for `u >= 0`."""
    z_min = (eta * p * (1.0 - p)) ** (1.0 / (2.0 - p))
    exists = u >= z_min + eta * p * z_min ** (p - 1.0)
    z = np.where(exists, u, z_min)
    for _ in range(_NEWTON_MAX_ITERATIONS):
        residual = z - u + eta * p * z ** (p - 1.0)
        slope = 1.0 - eta * p * (1.0 - p) * z ** (p - 2.0)
        delta = np.where(exists & (slope > 0), residual / np.where(slope > 0, slope, 1.0), 0.0)
        z = np.maximum(z - delta, z_min)
        if not np.any(np.abs(delta) > 1e-15 * np.maximum(u, 1.0)):
            break
    better = 0.5 * (z - u) ** 2 + eta * z**p < 0.5 * u**2
    return np.where(exists & better, z, 0.0)
