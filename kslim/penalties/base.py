"""The shared shape of kslim's sparsity penalties."""

import keras
import numpy as np
from keras import ops


class Penalty(keras.regularizers.Regularizer):
    """Base class: `lam * sum(phi(|x|))` with a closed-form proximal operator.

    Subclasses define `_phi(a)` on `a = |x|` in `keras.ops` (the value) and
    `prox(x, step)` in NumPy: the minimiser of
    `0.5 * (z - x)**2 + step * lam * phi(|z|)`, element-wise.

    Args:
        lam: float >= 0, the weight of the penalty (lambda in the papers).
    """

    def __init__(self, lam=1e-4):
        lam = float(lam)
        if not np.isfinite(lam) or lam < 0:
            raise ValueError(
                f"{self.name()} got lam={lam}; lam must be a finite number >= 0 "
                "(1e-4 for VGG and 1e-5 for ResNet/DenseNet in Liu et al.)."
            )
        self.lam = lam

    def __call__(self, x):
        # sign(x) * x equals |x|, but its gradient is 0 at x = 0 on every backend
        # (JAX's abs has gradient 1 there): the subgradient convention sign(0) = 0.
        return self.lam * ops.sum(self._phi(ops.sign(x) * x))

    def _phi(self, a):
        raise NotImplementedError

    def prox(self, x, step):
        """Proximal operator of `step * self` at `x`, element-wise.

        The minimiser of `0.5 * (z - x)**2 + step * lam * phi(|z|)`: a
        thresholding rule that gives exact zeros (each subclass's docstring
        gives its closed form).

        Args:
            x: array-like of float, the point.
            step: float >= 0, the step size (the learning rate).

        Returns:
            A float64 NumPy array of `x`'s shape.
        """
        x = np.asarray(x, dtype=np.float64)
        eta = float(step) * self.lam
        if eta == 0.0:
            return x.copy()
        return self._prox(x, eta)

    def _prox(self, x, eta):
        """The proximal operator of `eta * phi(|.|)` at the float64 array `x` (eta > 0)."""
        raise NotImplementedError

    def get_config(self):
        return {"lam": self.lam}

    @classmethod
    def name(cls):
        """The penalty's public name (`kslim.penalties.<name>`), which is also its registered name in files."""
        registered = keras.saving.get_registered_name(cls)
        return registered.split(">", 1)[1] if registered.startswith("kslim>") else cls.__name__

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name()}({args})"
