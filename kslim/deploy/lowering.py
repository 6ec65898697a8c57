"""Lowering a pruned model for runtimes without GATHER: channel selections folded into zero weights."""

import keras
import numpy as np

from kslim.layers.channel_select import ChannelSelect
from kslim.pruning import config_edit
from kslim.pruning.graph import Graph
from kslim.pruning.handlers import get_handler


def fold_selections(model):
    """Returns a copy of a pruned model whose `ChannelSelect` layers are folded into zero weights.

    A `ChannelSelect` (the paper's channel selection, where a block reads part
    of a shared stream) becomes a TFLite GATHER, which LiteRT's XNNPACK
    delegate does not run. Here each selection is removed: the layers between
    it and the next producer (a BatchNormalization and per-channel layers) get
    the stream's full width, with the dropped channels' BN set to output 0,
    and the producer gets zero kernel rows for them. The model computes the
    same outputs, with the FLOPs of the unselected convolution.

    Args:
        model: a built functional model, e.g. from `kslim.prune`.

    Returns:
        A new `keras.Model` without `ChannelSelect` layers (the same model
        rebuilt when it has none).

    Raises:
        ValueError: if a selection is not followed, through layers with one
            reader each, by a producer whose handler knows its input axes.

    Example:

    >>> wide = kslim.deploy.fold_selections(kslim.prune(preresnet, ratio=0.4))
    """
    g = Graph(model)
    widen = {}
    for node in g.nodes:
        if not isinstance(node.op, ChannelSelect):
            continue
        keep = list(node.op.indices)
        full = g.shapes[node.inputs[0]][-1]
        key = node.outputs[0]
        while True:
            readers = g.consumers[key]
            reader = g.nodes[readers[0]] if len(readers) == 1 else None
            if reader is None or len(reader.inputs) != 1:
                raise ValueError(
                    f"Cannot fold channel selection '{node.op.name}': its output is read by "
                    f"{len(readers)} layers; only a chain of single readers up to a producer folds."
                )
            widen[reader.op.name] = (keep, full)
            if reader.role == "producer":
                break
            if reader.role not in ("scale", "per_channel"):
                raise ValueError(
                    f"Cannot fold channel selection '{node.op.name}': '{reader.op.name}' "
                    f"({type(reader.op).__name__}) between it and the next producer mixes channels."
                )
            key = reader.outputs[0]
    config = model.get_config()
    for entry in config["layers"]:
        entry.pop("build_config", None)
    selects = {n.op.name for n in g.nodes if isinstance(n.op, ChannelSelect)}
    config_edit.remove(config, selects, isinstance(model, keras.Sequential))
    wide = config_edit.rebuild(config, isinstance(model, keras.Sequential))
    for layer in wide.layers:
        weights = model.get_layer(layer.name).get_weights()
        if layer.name in widen:
            weights = _widen(layer, weights, layer.get_weights(), *widen[layer.name])
        layer.set_weights(weights)
    return wide


def _widen(layer, weights, targets, keep, full):
    """`weights` of the narrow layer placed at the `keep` positions of the wide layer's."""
    handler = get_handler(layer)
    axes = handler.weight_axes(layer, [t.shape for t in targets])
    is_bn = isinstance(layer, keras.layers.BatchNormalization)
    out = []
    for i, (w, target, ax) in enumerate(zip(weights, targets, axes)):
        if w.shape == target.shape:
            out.append(w)
            continue
        # BN's moving variance (its last weight) is 1 for the dropped channels, so it stays finite.
        wide = np.ones_like(target) if is_bn and i == len(targets) - 1 else np.zeros_like(target)
        axis = next((a for a, which in ax.items() if which in ("in", "out")), -1)
        index = [slice(None)] * wide.ndim
        index[axis] = keep
        wide[tuple(index)] = w
        out.append(wide)
    return out
