"""A BatchNormalization that TFLite cannot fold into a convolution, written as one 1x1 depthwise convolution.

The TFLite converter folds a BN into the convolution before it when that
convolution is its only input. A BN that reads anything else (a residual
sum, a dense concatenation, a channel selection, the model input: the BN of
every pre-activation block, Liu et al. 2017's stream readers) becomes a MUL
and an ADD, and LiteRT's XNNPACK runs the ReLU after it as a third pass
over the tensor. A 1x1 depthwise convolution with the BN's scale as weights,
its shift as bias and the ReLU fused computes the same thing in one pass
(`benchmarks/deploy.py` times both forms of each baseline).
"""

import keras
import numpy as np

from kslim.pruning import config_edit
from kslim.pruning.graph import Graph

# Layers the converter folds a following BN into (when the BN is their output's only reader).
_FOLDS_BN = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
             keras.layers.Conv2DTranspose, keras.layers.Dense)


def unfolded_batch_norms(model):
    """`{BN name: name of the ReLU it alone feeds, or None}` for each 4-D channels-last
    BatchNormalization of `model` that the converter would write as MUL and ADD."""
    g = Graph(model)
    made_by = {key: node for node in g.nodes for key in node.outputs}
    found = {}
    for node in g.nodes:
        bn = node.op
        if not isinstance(bn, keras.layers.BatchNormalization) or len(g.shapes[node.inputs[0]]) != 4:
            continue
        if bn.axis not in (-1, 3):
            continue
        source = made_by.get(node.inputs[0])
        if source is not None and isinstance(source.op, _FOLDS_BN) and len(g.consumers[node.inputs[0]]) == 1:
            continue
        readers = g.consumers[node.outputs[0]]
        alone = len(readers) == 1 and node.outputs[0] not in g.output_keys  # the ReLU alone reads the BN
        relu = g.nodes[readers[0]].op if alone else None
        found[bn.name] = relu.name if _is_relu(relu) else None
    return found


def _is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    if isinstance(layer, keras.layers.Activation):
        return keras.activations.serialize(layer.activation) == "relu"
    return False


def batch_norms_as_depthwise(model):
    """Returns a copy of `model` whose unfolded BNs (and the ReLU each alone feeds) are 1x1 depthwise
    convolutions computing the same values in inference; `model` itself when it has none."""
    found = unfolded_batch_norms(model)
    if not found:
        return model
    config, sequential = config_edit.editable(model)
    config_edit.remove(config, {relu for relu in found.values() if relu}, sequential)
    config_edit.replace(config, {
        name: keras.layers.DepthwiseConv2D(1, use_bias=True, activation="relu" if relu else None, name=name,
                                           dtype=model.get_layer(name).dtype_policy)
        for name, relu in found.items()}, sequential)
    rebuilt = config_edit.rebuild(config, sequential)
    for layer in rebuilt.layers:
        source = model.get_layer(layer.name)
        layer.set_weights(_depthwise_weights(source) if layer.name in found else source.get_weights())
    return rebuilt


def _depthwise_weights(bn):
    """`[kernel (1, 1, C, 1), bias (C,)]` of the depthwise convolution that computes `bn` in inference."""
    def value(variable, default):
        return default if variable is None else keras.ops.convert_to_numpy(variable).astype(np.float64)

    mean, variance = value(bn.moving_mean, 0.0), value(bn.moving_variance, 1.0)
    scale = value(bn.gamma if bn.scale else None, 1.0) / np.sqrt(variance + bn.epsilon)
    shift = value(bn.beta if bn.center else None, 0.0) - mean * scale
    return [scale.astype("float32").reshape(1, 1, -1, 1), shift.astype("float32")]
