"""A model with NaN or infinite weights is refused in one line naming the layer, never pruned silently."""

import warnings

import numpy as np
import pytest

import kslim
from kslim.testing import archs
from kslim.testing.exactness import sparsify


def _set(model, layer, index, change):
    weights = model.get_layer(layer).get_weights()
    change(weights[index])
    model.get_layer(layer).set_weights(weights)


@pytest.mark.parametrize("layer, index, change, message", [
    ("block0_bn", 0, lambda w: w.fill(np.nan),
     r"the scaling factors of 'block0_bn' \(gamma\) are not finite \(16 NaN and 0 infinite values of 16, first at "
     r"channel 0\): the training diverged. Train again with a lower learning rate or lam."),
    ("block3_bn", 0, lambda w: w.__setitem__(5, np.nan), r"'block3_bn' \(gamma\) are not finite \(1 NaN .* channel 5"),
    ("block1_conv", 0, lambda w: w.__setitem__((0, 0, 0, 0), np.inf),
     r"layer 'block1_conv' has non-finite weights \(kernel: 0 NaN and 1 infinite values of 2304\); the model "
     r"computes NaN or Inf"),
    ("block4_bn", 3, lambda w: w.__setitem__(2, np.nan), r"layer 'block4_bn' has non-finite weights \(moving_variance"),
])
def test_non_finite_weights_are_refused_naming_the_layer(layer, index, change, message):
    model = sparsify(archs.vgg())
    _set(model, layer, index, change)
    for call in (lambda: kslim.plan(model, ratio=0.5), lambda: kslim.prune(model, threshold=1e-8)):
        with pytest.raises(ValueError, match=message):
            call()


def test_a_budget_on_factors_that_have_not_separated_warns_with_the_numbers():
    model = archs.vgg()  # untrained: every gamma 1.0
    with pytest.warns(UserWarning, match=r"The scaling factors have not separated: 0 of 192 are below 1% of the "
                                         r"largest \(1\), but the plan prunes 92 \(\|factor\| < 1\).*Train longer "
                                         r"with the sparsity penalty, or with a larger lam"):
        kslim.plan(model, ratio=0.5)
    sparse = sparsify(archs.vgg())  # a third of the factors at zero, as sparsity training leaves them
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        kslim.plan(sparse, ratio=0.3)
        kslim.plan(model, threshold=0.5)  # a threshold says itself what counts as zero
