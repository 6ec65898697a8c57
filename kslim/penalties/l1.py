"""The L1 penalty of network slimming."""

import keras
import numpy as np

from kslim.penalties.base import Penalty


@keras.saving.register_keras_serializable(package="kslim")
class L1(Penalty):
    """`lam * sum(|x|)`, the sparsity penalty of network slimming.

    Trained by subgradient (`sign(0) = 0`); its proximal operator is
    soft-thresholding, which gives exact zeros.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, eq. (1).

    Args:
        lam: float, the penalty weight (1e-4 for VGG, 1e-5 for ResNet/DenseNet).

    Example:

    >>> kslim.penalties.L1(lam=1e-4)(np.array([0.5, -0.25]))  # 7.5e-05
    """

    def _phi(self, a):
        return a

    def _prox(self, x, eta):
        return np.sign(x) * np.maximum(np.abs(x) - eta, 0.0)
