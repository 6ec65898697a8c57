"""A `BorderBias` written as one input channel of ones that the convolution reads, not an image ADD.

`kslim.prune` puts a `BorderBias` after a zero-padded convolution that lost
input channels which were nonzero constants (a pruned BN's beta through its
ReLU): it adds `conv(ones, kernel)`, exact on the border. In a TFLite file
that is an ADD of a constant image, and it keeps the BN after the
convolution from being folded into it: two more passes over the tensor, on
every call. The same values come out of the convolution itself when it reads
one more input channel that is 1 inside the image (and 0 in its zero
padding) with the `BorderBias` kernel as that channel's weights. The BN
before the convolution makes that channel: scale 0, shift 1. The channel is
one the file already has where a folded or spanned selection left a dropped
channel in front of the reader, else one more stream channel next to a run
the reader's selection keeps, else one more output channel of the
convolution that feeds the BN, where that does not cross a multiple of 8
(XNNPACK computes output channels in tiles).
"""

import keras
import numpy as np

from kslim.layers.border_bias import BorderBias
from kslim.layers.channel_select import ChannelSelect, runs
from kslim.pruning import config_edit
from kslim.pruning.graph import Graph
from kslim.pruning.surgery import _ZERO_PADDING

# Keras's separable, depthwise and transposed convolutions are not subclasses of these.
_CONVS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def borders_as_constant_channels(model):
    """Returns a copy of `model` in which each `BorderBias` it can replace is gone and its reader
    convolution reads a channel of ones instead (same outputs); `model` itself when there is none."""
    g = Graph(model)
    made_by = {key: node for node in g.nodes for key in node.outputs}
    carriers = {}
    for index, node in enumerate(g.nodes):
        if isinstance(node.op, BorderBias):
            found = _carrier(g, made_by, index, node)
            if found is not None:
                carriers[node.op.name] = found
    if not carriers:
        return model
    config, sequential = config_edit.editable(model)
    inserted = {c["source"]: c for c in carriers.values() if c["how"] != "dead"}
    for entry in config["layers"]:
        carrier = inserted.get(config_edit.entry_name(entry))
        if carrier is not None and carrier["how"] == "select":
            entry["config"]["indices"].insert(carrier["position"], carrier["channel"])
        elif carrier is not None:
            entry["config"]["filters"] += 1
    config_edit.remove(config, set(carriers), sequential)
    rebuilt = config_edit.rebuild(config, sequential)
    weights = {layer.name: layer.get_weights() for layer in model.layers}
    for border, c in carriers.items():
        position = c["position"]
        if c["how"] == "conv":
            kernel, *bias = weights[c["source"]]
            weights[c["source"]] = [np.concatenate([kernel, np.zeros(kernel.shape[:-1] + (1,), kernel.dtype)], -1)]
            weights[c["source"]] += [np.append(b, np.float32(0)) for b in bias]
        gamma, beta, mean, variance = weights[c["bn"]]
        if c["how"] != "dead":
            gamma, beta, mean, variance = (np.insert(w, position, 0.0) for w in (gamma, beta, mean, variance))
        gamma[position], beta[position], mean[position], variance[position] = 0.0, 1.0, 0.0, 1.0
        weights[c["bn"]] = [gamma, beta, mean, variance]
        kernel, *rest = weights[c["reader"]]
        ones = model.get_layer(border).get_weights()[0]  # (*kernel_size, 1, filters)
        if c["how"] == "dead":
            kernel = kernel.copy()
            kernel[..., position, :] = ones[..., 0, :]
        else:
            kernel = np.insert(kernel, position, ones[..., 0, :], axis=-2)
        weights[c["reader"]] = [kernel] + rest
    for layer in rebuilt.layers:
        layer.set_weights(weights[layer.name])
    return rebuilt


def _carrier(g, made_by, index, node):
    """Where the channel of ones for BorderBias `node` comes from, as a dict (None: keep the layer).

    `how` is "dead" (a channel the reader already reads, zero after its BN and over zero weights),
    "select" (one more stream channel in the reader's `ChannelSelect`, at `position` of its indices)
    or "conv" (one more output channel of the convolution `source` that feeds the BN).
    """
    reader = made_by.get(node.inputs[0])
    outputs = set(g.output_keys)
    if reader is None or not _plain_conv(reader.op) or g.consumers[node.inputs[0]] != [index] \
            or node.inputs[0] in outputs:
        return None
    key, bn = reader.inputs[0], None
    while bn is None:  # back from the reader: layers that keep a 1 a 1, then its BN
        if len(g.consumers[key]) != 1 or key not in made_by or key in outputs:
            return None
        op = made_by[key].op
        if isinstance(op, keras.layers.BatchNormalization):
            if not (op.scale and op.center):
                return None
            bn = op
        elif not _keeps_one(op):
            return None
        key = made_by[key].inputs[0]
    found = {"reader": reader.op.name, "bn": bn.name}
    gamma, beta = (keras.ops.convert_to_numpy(v) for v in (bn.gamma, bn.beta))
    weights = keras.ops.convert_to_numpy(reader.op.kernel)
    dead = np.flatnonzero((gamma == 0) & (beta == 0) & ~weights.reshape(-1, *weights.shape[-2:]).any(axis=(0, 2)))
    if dead.size:
        return dict(found, how="dead", position=int(dead[0]), source=None)
    if len(g.consumers[key]) != 1 or key not in made_by or key in outputs:
        return None
    op = made_by[key].op
    found["source"] = op.name
    if isinstance(op, ChannelSelect):
        indices, width = list(op.indices), g.shapes[made_by[key].inputs[0]][-1]
        for start, stop in runs(indices):
            if stop < width and stop not in indices:  # the run grows by one: no new slice
                return dict(found, how="select", position=indices.index(stop - 1) + 1, channel=stop)
            if start > 0 and start - 1 not in indices:
                return dict(found, how="select", position=indices.index(start), channel=start - 1)
        return None
    if _plain_conv(op) and op.filters % 8:
        return dict(found, how="conv", position=op.filters)
    return None


def _plain_conv(layer):
    return isinstance(layer, _CONVS) and getattr(layer, "groups", 1) == 1


def _keeps_one(layer):
    """Whether a layer between the BN and the reader passes a channel of ones on as ones (and zero
    padding as zero padding)."""
    if isinstance(layer, _ZERO_PADDING + (keras.layers.Dropout, keras.layers.SpatialDropout2D)):
        return True
    if isinstance(layer, keras.layers.ReLU):
        return (layer.max_value is None or layer.max_value >= 1) and layer.threshold < 1
    if isinstance(layer, keras.layers.Activation):
        return keras.activations.serialize(layer.activation) in ("relu", "linear", "relu6")
    return False
