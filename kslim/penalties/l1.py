"""The L1 penalty of network slimming."""

import keras
import numpy as np

from kslim.penalties.base import Penalty


# Registered as "kslim>L1", but named apart from keras.regularizers.L1 in Python: Keras records a class's
# Python name in a file and, where the registered name is unknown (a process that never imported kslim),
# looks that name up among its own regularizers, found `L1` and failed with "L1.__init__() got an
# unexpected keyword argument 'lam'". Now such a load fails with Keras's "Could not locate class
# 'SlimmingL1'" and the config's registered name 'kslim>L1'.
@keras.saving.register_keras_serializable(package="kslim", name="L1")
class SlimmingL1(Penalty):
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


L1 = SlimmingL1
