"""`kslim.add_channel_masks`: scaling factors for layers that have no BatchNormalization."""

import keras

from kslim.layers.channel_mask import ChannelMask
from kslim._internal import keras_api
from kslim.pruning import config_edit
from kslim.pruning import nesting
from kslim.pruning.analysis import Analysis


def add_channel_masks(model, exclude=()):
    """Returns a copy of `model` with a `ChannelMask` after every unscored producer.

    Use it for networks without BatchNormalization (LeNet-5, an MLP) so that
    Yang et al.'s method runs through the usual workflow: `add_channel_masks`
    -> `attach` -> `fit` -> `prune`. A mask goes right after each Conv/Dense
    layer whose channels no scaling factor scores and that does not feed the
    model output directly. A fused activation is split off into an
    `Activation` layer after the mask, so that `kslim.prune` can later fold
    the mask into the layer's weights. Where a `BatchNormalization(scale=False)`
    reads the layer (InceptionV3, InceptionResNetV2), the mask goes after that
    BN instead: in training BN divides by the batch statistics, so a mask
    before it would not change the loss and L1 would shrink every mask alike;
    after it, the mask is the gamma the BN lacks, and `kslim.prune` folds it
    into the BN as one. Weights are copied; `model` is not modified. Nested
    models (a backbone called as one layer, a `Sequential` stem) are inlined
    first, as `kslim.prune` does, so their layers get masks too, and the
    result is one flat functional model with the same layer names.

    Reference: Yang et al., "Structured Pruning of Convolutional
    Neural Networks via L1 Regularization", IEEE Access 2019.

    Args:
        model: a built functional or Sequential Keras model.
        exclude: names of layers that get no mask.

    Returns:
        A new Keras model; the masks are named `<layer>_mask`.

    Raises:
        ValueError: if no layer can take a mask.

    Example:

    >>> masked = kslim.add_channel_masks(lenet)
    >>> kslim.attach(masked, lam=1e-4)
    """
    model = nesting.flatten(model)  # masks go inside nested models too, as prune prunes through them
    if keras_api.is_functional_subclass(model):  # a KerasHub backbone: its config holds its constructor's
        model = keras.Model(model.inputs, model.outputs, name=model.name)
    analysis = Analysis(model)
    g = analysis.graph
    out_groups = {g.group(c) for key in g.output_keys for c in g.ids[key]}
    targets, why = [], {"excluded": 0, "scored by a BatchNormalization or mask": 0, "feeding the output": 0,
                        "read by a normalization that mixes channels": 0}
    for index, node in enumerate(g.nodes):
        if node.role != "producer":
            continue
        groups = {g.group(c) for c in g.ids[node.outputs[0]]}
        if node.op.name in exclude:
            why["excluded"] += 1
        elif groups & out_groups:
            why["feeding the output"] += 1
        elif any(r in analysis.score for r in groups):
            why["scored by a BatchNormalization or mask"] += 1
        elif any(isinstance(g.nodes[j].op, _MIXING) for j in g.consumers[node.outputs[0]]):
            # A GroupNormalization after the mask would renormalise a zeroed channel's group: pruning it
            # could never be exact, so the mask would only train.
            why["read by a normalization that mixes channels"] += 1
        else:
            targets.append((node.op, _unscaled_bn_after(g, node)))
    if not targets:
        counted = ", ".join(f"{n} {reason}" for reason, n in why.items() if n) or "none found"
        raise ValueError(
            f"Model '{model.name}' has no Conv/Dense layer that could take a ChannelMask ({counted}); "
            "masks are for producers that no scaling factor scores yet."
        )
    is_sequential = isinstance(model, keras.Sequential)
    config = model.get_config()
    for entry in config["layers"]:
        entry.pop("build_config", None)
    for layer, bn in targets:
        entry = next(e for e in config["layers"] if config_edit.entry_name(e) == layer.name)
        activation = entry["config"].get("activation", "linear")
        mask = ChannelMask(name=config_edit.unique_name(config, f"{layer.name}_mask"))
        if bn is not None:  # BN(scale=False) divides by the batch's spread: the factor goes after it
            config_edit.insert_after(config, bn.name, _serialize(mask), is_sequential)
            continue
        if activation not in ("linear", None):
            entry["config"]["activation"] = "linear"
            act = keras.layers.Activation(
                activation, name=config_edit.unique_name(config, f"{layer.name}_act")
            )
            config_edit.insert_after(config, layer.name, _serialize(act), is_sequential)
        config_edit.insert_after(config, layer.name, _serialize(mask), is_sequential)
    new = config_edit.rebuild(config, is_sequential)
    for layer in new.layers:
        if not isinstance(layer, ChannelMask) and layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return new


_MIXING = (keras.layers.GroupNormalization, keras.layers.LayerNormalization)


def _unscaled_bn_after(g, node):
    """The BatchNormalization(scale=False) that alone reads a producer's output, or None."""
    readers = g.consumers[node.outputs[0]]
    if len(readers) != 1:
        return None
    bn = g.nodes[readers[0]].op
    if isinstance(bn, keras.layers.BatchNormalization) and not bn.scale and g.nodes[readers[0]].role == "per_channel":
        return bn
    return None


def _serialize(layer):
    entry = keras.saving.serialize_keras_object(layer)
    entry.pop("build_config", None)
    return entry
