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


def how_to_add_factors(model, barriers=()):
    """The fix for a model without channel scaling factors to score, for error messages.

    It says what the model has: frozen BatchNormalization (unfreeze it), BN
    with `scale=False` (InceptionV3: masks), BN on another axis, BN that the
    analysis keeps whole (`barriers`: the reasons of BN calls it kept, such
    as a shared sub-model called twice), GroupNormalization or
    LayerNormalization (which mix a group's channels: no mask makes them
    prunable), or none at all.
    """
    layers = list(iter_layers(model))
    bns = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    if barriers:
        more = f" (and {len(barriers) - 1} more)" if len(barriers) > 1 else ""
        return (f"its BatchNormalization layers are kept whole: {barriers[0]}{more}; a layer called more than "
                "once (a shared sub-model) is pruned the same way for every call, which kslim cannot do: give each "
                "call its own layers")
    frozen = [layer for layer in bns if not layer.trainable]
    if frozen:
        return (f"its {len(frozen)} BatchNormalization layers are frozen (trainable=False, e.g. '{frozen[0].name}'), "
                "and kslim scores only factors that train; set trainable = True on them (or on their backbone) "
                "before sparsity training")
    unscaled = [layer for layer in bns if not layer.scale]
    if unscaled:
        return (
            f"its {len(unscaled)} BatchNormalization layers have scale=False, so no gamma scores a channel "
            f"(e.g. '{unscaled[0].name}'); kslim.add_channel_masks(model) puts a trainable mask after each"
        )
    if bns:
        return (f"its BatchNormalization layers do not normalise the channel axis (e.g. '{bns[0].name}' has "
                f"axis={bns[0].axis}); kslim prunes the last axis (channels_last): build the model channels_last")
    grouped = [layer for layer in layers
               if isinstance(layer, (keras.layers.GroupNormalization, keras.layers.LayerNormalization))]
    if grouped:
        return (f"it normalises with {type(grouped[0]).__name__} (e.g. '{grouped[0].name}'), which mixes the "
                "channels of a group, so no channel can be removed without changing the others, and masks "
                "before it would not make them prunable either; use BatchNormalization to slim it")
    return ("add BatchNormalization (scale=True) after its convolutions or dense layers, or use "
            "kslim.add_channel_masks(model)")
