"""Finding the channel scaling factors of a model (BN gamma, ChannelMask)."""

import keras

from kslim.layers.channel_mask import ChannelMask


def iter_layers(model):
    """Yields every layer of `model`, descending into nested models."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from iter_layers(layer)
        else:
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
