"""Finding the channel scaling factors of a model (BN gamma, ChannelMask)."""

import keras
import numpy as np

from kslim.layers.channel_mask import ChannelMask


def iter_layers(model):
    """Yields every layer of `model`, descending into nested models and custom layers."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, keras.Model):
            yield layer


def factor_attr(layer):
    """Name of the layer's scaling-factor weight (`"gamma"`, `"mask"`) or None."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return "gamma" if layer.scale else None
    if isinstance(layer, ChannelMask):
        return "mask"
    return None


def scaling_factors(model, exclude=()):
    """Returns `[(layer, variable)]` for every trainable scaling factor.

    Args:
        model: a built Keras model (nested models are searched).
        exclude: layer names to skip.
    """
    found = []
    for layer in iter_layers(model):
        attr = factor_attr(layer)
        if attr is None or layer.name in exclude or not layer.trainable:
            continue
        variable = getattr(layer, attr, None)
        if variable is not None:
            found.append((layer, variable))
    return found


def global_threshold(scores, ratio):
    """Returns the threshold below which the `ratio` smallest channel scores fall.

    Network slimming pools the scores of all layers and prunes a global
    percentile of them: `k = int(round(ratio * n))` of the `n` channels, the
    ones with the smallest scores. This returns `t` such that `scores < t`
    selects them: the k-th smallest score (`sorted[k]`, 0-based) when `k < n`,
    and `+inf` when `k == n` (prune everything; the caller applies per-layer
    floors). `round` is Python's (halves go to the even neighbour).

    Ties: a channel whose score equals `t` is kept, so when several scores
    equal `sorted[k]` (for example many exact zeros, with `k` inside the run)
    fewer than `k` channels are selected; pruning never removes a channel that
    scores the same as one it keeps.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, section 3.3 (global threshold).

    Args:
        scores: 1-D array-like of channel scores (|gamma|); absolute values
            are taken.
        ratio: float in [0, 1], the fraction of channels to prune.

    Returns:
        A Python float (`+inf` when every channel is to be pruned; also for
        empty `scores`).

    Raises:
        ValueError: for a ratio outside [0, 1], or scores that are not 1-D or
            contain NaN.

    Example:

    >>> global_threshold(np.array([0.3, 0.01, 0.2, 0.0]), ratio=0.5)
    0.2
    """
    ratio_value = float(ratio)
    if not 0.0 <= ratio_value <= 1.0:  # also rejects NaN
        raise ValueError(
            f"global_threshold got ratio={ratio!r}; ratio is the fraction of channels to "
            "prune and must be in [0, 1] (0.7 prunes 70% of all channels)."
        )
    scores = np.abs(np.asarray(scores, dtype=np.float64))
    if scores.ndim != 1:
        raise ValueError(
            f"global_threshold got scores of shape {scores.shape}; pass the pooled scores "
            "of all channels as one 1-D array (np.concatenate the per-layer arrays)."
        )
    if np.isnan(scores).any():
        raise ValueError(
            f"global_threshold got {int(np.isnan(scores).sum())} NaN score(s); the scaling "
            "factors diverged during training: lower the learning rate or lam."
        )
    n = scores.size
    k = int(round(ratio_value * n))
    if k >= n:
        return float("inf")
    return float(np.sort(scores)[k])
