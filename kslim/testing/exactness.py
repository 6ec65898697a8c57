"""What the exactness tests and benchmarks share: masked models, inputs, the error measure.

`sparsify` makes a model look sparsity-trained (random BN statistics, about a
third of the scaling factors and betas at zero), so that `kslim.prune` has
channels to remove and a masked model to be compared with.
"""

import keras
import numpy as np

from kslim.layers.channel_mask import ChannelMask
from kslim.pruning import verify
from kslim.sparsity.factors import scaling_factors


def sparsify(model, frac=0.35, beta_zero=True, seed=0, shared=0.8):
    """Sets random BN statistics and zeroes ~frac of the scaling factors (and betas).

    Layers of the same width share one zero pattern with probability `shared`
    (0.8), so that channels tied across a residual stream really are all zero
    and get pruned; the others draw their own (with `shared=0`, every reader
    of a stream selects channels of its own, as synthetic gammas do).
    """
    rng = np.random.default_rng(seed)
    patterns = {}
    for layer, variable in scaling_factors(model):
        n = variable.shape[0]
        patterns.setdefault(n, rng.random(n) < frac)
        zero = patterns[n] if rng.random() < shared else rng.random(n) < frac
        if isinstance(layer, ChannelMask):
            mask = rng.uniform(-1.0, 1.0, n).astype("float32")
            mask[zero] = 0.0
            layer.set_weights([mask])
            continue
        gamma = rng.uniform(0.3, 1.0, n).astype("float32")
        beta = rng.normal(0.0, 0.2, n).astype("float32")
        gamma[zero] = 0.0
        if beta_zero:
            beta[zero] = 0.0
        mean = rng.normal(0.0, 0.2, n).astype("float32")
        var = rng.uniform(0.5, 2.0, n).astype("float32")
        layer.set_weights([gamma, beta, mean, var])
    scored = {id(layer) for layer, _ in scaling_factors(model)}
    for layer in _all_layers(model):  # BN(scale=False) (InceptionV3): random statistics and beta too
        if isinstance(layer, keras.layers.BatchNormalization) and id(layer) not in scored:
            n = layer.moving_mean.shape[0]
            stats = [rng.normal(0.0, 0.2, n), rng.uniform(0.5, 2.0, n)]
            head = [rng.uniform(0.3, 1.0, n)] * layer.scale + [rng.normal(0.0, 0.2, n)] * layer.center
            layer.set_weights([w.astype("float32") for w in head + stats])
    return model


def _all_layers(model):
    from kslim._internal import keras_api

    return keras_api.all_layers(model)


def masked_output(model, plan, x):
    """What `model` computes on `x` with the scaling factors `plan` prunes ("zeroed") set to 0: the output
    a model pruned by `plan` must reproduce (`kslim.pruning.verify.masked_output`, for one output)."""
    if not any(rec.get("zeroed") for rec in plan.layers.values()):
        raise ValueError("the plan prunes no scaling factor: there is no masked model to compare with")
    outputs = verify.masked_output(model, plan, x)
    return outputs[0] if len(outputs) == 1 else outputs


def inputs(model, n=4, seed=1):
    """`n` reproducible standard-normal samples shaped like the model's input."""
    return np.random.default_rng(seed).normal(size=(n,) + tuple(model.input_shape[1:])).astype("float32")


def rel_err(a, b):
    """max |a - b| / max |a|: the error measure of the exactness tests."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.abs(a - b).max() / np.abs(a).max())
