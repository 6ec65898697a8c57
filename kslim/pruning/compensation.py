"""Folding the constant output of pruned channels into the next layer.

A pruned channel whose scaling factor is zero still emits a constant: BN's
beta, passed through the activation and whatever per-channel layers follow.
Removing the channel removes that constant from the next producer's sum, so
kslim adds it back as a bias: exactly for Dense layers and 1x1 convolutions,
and exactly in the interior of larger kernels (on a zero-padded border the
kernel sees fewer copies of the constant, so the correction there is
approximate).

The constants are read off the masked model itself: one inference on a zero
input with the pruned groups' scaling factors set to zero, using
`stateless_call` so the original model is never touched.
"""

import keras
import numpy as np

from kslim.pruning import rules

_DEFAULT_SIZE = 32


def constants(analysis, pruned, readers):
    """Values of every channel at the given tensors in the masked model.

    Args:
        analysis: the `Analysis` of the model.
        pruned: set of pruned group roots.
        readers: tensor keys whose channel values are wanted.

    Returns:
        dict tensor key -> NumPy vector of the channel values at the centre
        position (one value per channel, or per feature for rank-2 tensors).
    """
    g = analysis.graph
    if not readers:
        return {}
    keys = list(dict.fromkeys(readers))
    probe = keras.Model(g.model.inputs, [g.tensors[k] for k in keys])
    masked = {}
    for node in g.nodes:
        if node.role != "scale":
            continue
        layer = node.op
        variable = layer.gamma if isinstance(layer, keras.layers.BatchNormalization) else layer.mask
        drop = [
            j for j, c in enumerate(g.ids[node.outputs[0]]) if g.group(c) in pruned
        ]
        if drop:
            value = np.array(keras.ops.convert_to_numpy(variable))
            value[drop] = 0.0
            masked[id(variable)] = value

    def values(variables):
        return [masked.get(id(v), v.value) for v in variables]

    inputs = [
        np.zeros([1] + [d if d is not None else _DEFAULT_SIZE for d in t.shape[1:]], t.dtype)
        for t in g.model.inputs
    ]
    outs, _ = probe.stateless_call(
        values(probe.trainable_variables),
        values(probe.non_trainable_variables),
        inputs,
        training=False,
    )
    if not isinstance(outs, (list, tuple)):
        outs = [outs]
    result = {}
    for key, out in zip(keys, outs):
        out = keras.ops.convert_to_numpy(out)[0]
        centre = tuple(d // 2 for d in out.shape[:-1])
        result[key] = np.asarray(out[centre], dtype=np.float64)
    return result


def bias_delta(layer, weights, dropped, values):
    """What the dropped input channels added to each output channel of `layer`.

    Args:
        layer: a producer layer (Conv*, Dense, SeparableConv*, Conv*Transpose).
        weights: its original weights (NumPy).
        dropped: the input positions that are removed.
        values: the constant value of each input position.

    Returns:
        A float64 vector over the layer's original output channels.
    """
    c = np.asarray(values, np.float64)[dropped]
    if isinstance(layer, rules._SEPARABLE):
        depthwise, pointwise = weights[0], weights[1]
        m = layer.depth_multiplier
        dw = depthwise.reshape(-1, depthwise.shape[-2], m).sum(axis=0)[dropped]  # (d, m)
        pw = pointwise.reshape(-1, pointwise.shape[-1]).reshape(-1, m, pointwise.shape[-1])
        return np.einsum("d,dm,dmo->o", c, dw, pw[dropped])
    kernel = weights[0]
    if isinstance(layer, rules._TRANSPOSE):
        summed = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0)  # (out, in)
        return summed[:, dropped] @ c / float(np.prod(layer.strides))
    summed = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0)  # (in, out)
    return c @ summed[dropped]
