"""Spreading the gain of folded channel masks evenly over a chain of layers, exactly.

L1 on `ChannelMask`s (Yang et al.) shrinks the masks of the channels it keeps
too, and training leaves much of the network's gain in them. Folded into the
layers they follow, the masks make some layers' weights tens of times smaller
than the rest, and SGD at the original learning rate then diverges in
fine-tuning (seen on LeNet-5 trained on MNIST). Between two linear layers
that only positively homogeneous layers separate (ReLU, max or average
pooling, Flatten, dropout, ...), scaling one layer's output by `c > 0` and
the next layer's kernel by `1 / c` changes nothing the model computes, so
the folded gain can be moved: every layer of such a chain gets the same share.
"""

import keras
import numpy as np

from kslim.layers.channel_mask import ChannelMask
from kslim.pruning.handlers import get_handler

def spread_mask_gains(g, weights, folded, records):
    """Rescales, in place in `weights`, the chains of linear layers that hold folded masks.

    For each chain of linear layers P1 -> ... -> Pn (each read only by the
    next, through positively homogeneous layers) in which some layer has a
    folded mask, layer i has gain `g_i`: the norm of the kernel slice it
    keeps after folding over the norm before (1 without a mask). Its kernel is
    multiplied by `c_i = G / g_i`, with `G` the geometric mean of the gains,
    and its bias by `c_1 * ... * c_i`; the product of all `c_i` is 1, so the
    chain's output is unchanged.

    Args:
        g: the model's `Graph`.
        weights: dict layer name -> list of NumPy weights, the folded and
            compensated full-size weights; layers of a chain that are not in
            it are added.
        folded: dict ChannelMask name -> the name of the layer it was folded into.
        records: the plan's per-layer records (for the kept channels).
    """
    masked = set(folded.values())
    folded_masks = set(folded)
    follower = {}
    for i, node in enumerate(g.nodes):
        if _is_linear(node):
            j = _next_linear(g, i, folded_masks)
            if j is not None:
                follower[i] = j
    heads = set(follower) - set(follower.values())
    for head in heads:
        chain = [head]
        while chain[-1] in follower:
            chain.append(follower[chain[-1]])
        layers = [g.nodes[i].op for i in chain]
        if not masked & {layer.name for layer in layers}:
            continue
        gains = [
            _gain(layer, weights[layer.name], records) if layer.name in masked else 1.0
            for layer in layers
        ]
        if not all(np.isfinite(gain) and gain > 0 for gain in gains):
            continue
        mean = np.exp(np.mean(np.log(gains)))
        scale = 1.0
        for layer, gain in zip(layers, gains):
            factor = mean / gain
            scale *= factor
            w = weights.setdefault(layer.name, [np.array(x) for x in layer.get_weights()])
            w[0] = (w[0] * factor).astype(w[0].dtype)
            for k in range(1, len(w)):
                w[k] = (w[k] * scale).astype(w[k].dtype)


def _is_linear(node):
    # A shared layer (or a grouped convolution) is a barrier, not a "producer": its
    # kernel serves other calls too, so it cannot be rescaled for this one.
    return node.role == "producer" and get_handler(node.op).rescalable(node.op)


def _homogeneous(op, folded_masks):
    if isinstance(op, ChannelMask):
        return op.name in folded_masks  # its mask now lives in the layer before it
    return isinstance(op, keras.layers.Layer) and get_handler(op).homogeneous(op)


def _next_linear(g, i, folded_masks):
    """The linear layer that alone reads node i's output through homogeneous layers, or None."""
    key = g.nodes[i].outputs[0] if len(g.nodes[i].outputs) == 1 else None
    while key is not None and key not in g.output_keys and len(g.consumers[key]) == 1:
        j = g.consumers[key][0]
        node = g.nodes[j]
        if len(node.inputs) != 1 or len(node.outputs) != 1:
            return None
        if _is_linear(node):
            return j
        if not _homogeneous(node.op, folded_masks):
            return None
        key = node.outputs[0]
    return None


def _gain(layer, folded_weights, records):
    """How much the folded mask scaled the kernel slice that `layer` keeps."""
    record = records.get(layer.name) or {}
    in_keep = (record.get("in") or [None])[0]
    out_keep = record.get("out")
    handler = get_handler(layer)
    before = handler.slice_weights(layer, [np.asarray(layer.get_weights()[0])], in_keep, out_keep)
    after = handler.slice_weights(layer, [folded_weights[0]], in_keep, out_keep)
    norm = float(np.linalg.norm(before[0]))
    return float(np.linalg.norm(after[0])) / norm if norm > 0 else 1.0
