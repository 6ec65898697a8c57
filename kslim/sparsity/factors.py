"""Finding the channel scaling factors of a model (BN gamma, ChannelMask)."""

import keras

from kslim._internal import keras_api
from kslim.pruning.handlers import get_handler


def iter_layers(model):
    """Yields every layer of `model`, descending into nested models and custom layers."""
    for layer in keras_api.all_layers(model):
        if not isinstance(layer, keras.Model):
            yield layer


def factor_attr(layer):
    """Name of the layer's scaling-factor weight (`"gamma"`, `"mask"`) or None: its handler's
    `scaling_factor`, so a custom layer with a registered handler is scored too."""
    return get_handler(layer).scaling_factor(layer)


def scaling_factors(model, exclude=()):
    """Returns `[(layer, variable)]` for every trainable channel scaling factor of a model.

    The factors are what `kslim.attach` penalises and `kslim.plan` scores: BN
    `gamma` (with `scale=True`), `ChannelMask` masks, and the weight that a
    registered handler's `scaling_factor` names. Frozen layers
    (`trainable=False`) are left out.

    Args:
        model: a built Keras model (nested models and layers inside custom
            layers are searched).
        exclude: layer names to skip.

    Returns:
        A list of `(layer, variable)` pairs in layer order.

    Example:

    >>> [layer.name for layer, _ in kslim.scaling_factors(model)][:2]
    ['block1_bn1', 'block1_bn2']
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


def how_to_add_factors(model):
    """The fix for a model without channel scaling factors, for error messages.

    A model whose BatchNormalization layers have `scale=False` (InceptionV3)
    already has BN: it is told to add masks, not to add BN.
    """
    unscaled = [layer for layer in iter_layers(model)
                if isinstance(layer, keras.layers.BatchNormalization) and not layer.scale]
    if unscaled:
        return (
            f"its {len(unscaled)} BatchNormalization layers have scale=False, so no gamma scores a channel "
            f"(e.g. '{unscaled[0].name}'); kslim.add_channel_masks(model) puts a trainable mask after each"
        )
    if any(isinstance(layer, keras.layers.BatchNormalization) for layer in iter_layers(model)):
        return ("its BatchNormalization layers score no channel kslim can prune (frozen, excluded, or not on "
                "the channel axis); kslim.add_channel_masks(model) adds masks after its convolutions")
    return ("add BatchNormalization (scale=True) after its convolutions or dense layers, or use "
            "kslim.add_channel_masks(model)")
