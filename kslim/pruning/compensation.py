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
`stateless_call` so the original model is never touched. That inference is
skipped where `known_zeros` proves the constants are exactly zero (a pruned
BN with beta 0 followed only by layers that map 0 to 0, as in a model whose
betas were never trained): then there is nothing to fold.
"""

import keras
import numpy as np

from kslim.pruning.handlers import get_handler

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
        variable = getattr(layer, get_handler(layer).scaling_factor(layer))
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


def known_zeros(analysis, pruned):
    """For every tensor, which channels are exactly 0 in the masked model, whatever the input.

    A pruned scaling factor makes its channel constant: 0 for a `ChannelMask`,
    beta for a BatchNormalization. The zero travels through layers whose
    handler says they are positively homogeneous (f(0) = 0: ReLU, pooling,
    dropout, Flatten, ...), concatenations, sums of zeros and products with a
    zero. Anything else is assumed nonzero.

    Returns:
        dict tensor key -> bool NumPy array over its channel positions.
    """
    g = analysis.graph
    zeros = {}
    for node in g.nodes:
        width = [len(g.ids[k]) for k in node.outputs]
        ins = [zeros.get(k) for k in node.inputs]
        out = None
        if node.role == "scale":
            out = np.array([g.group(c) in pruned for c in g.ids[node.outputs[0]]])
            if isinstance(node.op, keras.layers.BatchNormalization) and node.op.center:
                out &= keras.ops.convert_to_numpy(node.op.beta) == 0
        elif node.role in ("per_channel", "reshape") and get_handler(node.op).keeps_zero(node.op):
            out = ins[0]
        elif node.role == "flatten":
            out = np.tile(ins[0], width[0] // max(len(ins[0]), 1))
        elif node.role == "concat":
            out = np.concatenate(ins)
        elif node.role == "split":
            starts = np.cumsum([0] + width)
            for key, a, b in zip(node.outputs, starts[:-1], starts[1:]):
                zeros[key] = ins[0][a:b]
            continue
        elif node.role in ("merge", "multiply"):
            parts = [np.broadcast_to(z, (width[0],)) for z in ins]
            out = np.any(parts, axis=0) if node.role == "multiply" else np.all(parts, axis=0)
        for key, n in zip(node.outputs, width):
            zeros[key] = out if out is not None and len(out) == n else np.zeros(n, bool)
    return zeros
