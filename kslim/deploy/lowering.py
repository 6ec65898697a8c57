"""Lowering a pruned model for runtimes without GATHER: channel selections as slices, or folded into zero weights.

`kslim.export` converts `lowered(model)` to TFLite. A
`ChannelSelect` in Keras is one gather; as a TFLite GATHER it runs outside
LiteRT's XNNPACK delegate and splits its graph (the GPU delegate rejects it
too). Measured on LiteRT (pre-act ResNet-164,
40% of its channels pruned, 55 selections of 25 runs of consecutive channels
on average after the stream permutation, XNNPACK, 1 thread, against the
unpruned model): GATHER 0.63x, every selection as slices and concatenations
(~1,300 small ops) 0.55x, every selection folded into zero weights 1.03x. A
selection of a few runs costs a few slices; one of many runs costs more than
the FLOPs it saves, and is folded.
"""

import contextlib

import keras
import numpy as np

from kslim._internal import keras_api
from kslim.deploy.constant_channel import borders_as_constant_channels
from kslim.deploy.depthwise_bn import batch_norms_as_depthwise
from kslim.deploy.int8_pooling import average_pools_as_depthwise
from kslim.deploy.latency import channel_tile
from kslim.layers.border_bias import BorderBias
from kslim.layers.channel_select import ChannelSelect
from kslim.profiling import profile
from kslim.pruning import config_edit
from kslim.pruning import nesting
from kslim.pruning.analysis import layer_flops
from kslim.pruning.budget import selection_lowering
from kslim.pruning.graph import Graph
from kslim.pruning.handlers import get_handler


MODES = ("auto", "slices", "fold", "gather")


@contextlib.contextmanager
def lowered(model, mode="auto", quantize=None, count_flops=False):
    """Yields the model that `kslim.export` converts to TFLite, with its selections lowered.

    `mode` is one of `MODES`; `kslim.export` checks it with its other arguments.

    With `"auto"` each selection is written the way the measured cost model
    (`kslim.pruning.budget.selection_lowering`, int8's for `quantize="int8"`,
    the readers' input channels in the tiles `kslim.deploy.channel_tile`
    measures on this CPU, as a plan for LiteRT counts them, so that the file
    slices what such a plan kept as slices) predicts fastest (a saving must
    hold at 1 and at 2 interpreter threads):
    static slices of its runs of consecutive channels (at most `SLICE_RUNS`)
    and concatenations of at most 4 tensors (XNNPACK's limit); one slice
    over its span, the dropped channels inside it read over zero weights;
    or folded into zero weights (`fold_selections`). A
    selection that zero weights cannot stand in for is sliced. `"slices"`
    slices every selection, `"fold"` folds every one it can, `"gather"`
    leaves them as TFLite GATHERs. A `BorderBias` becomes a channel of ones
    that its convolution reads (`constant_channel`), and every stream BN one
    depthwise pass (`depthwise_bn`); in an int8 file, every 2-D average
    pooling a depthwise convolution too (`int8_pooling`). Outputs are
    unchanged. On exit the layers lower to a gather again, so `model` is
    left as it was.

    Yields:
        `(model, counts)`: the model to convert (a copy when anything was
        rewritten) and `{"sliced": n, "spanned": s, "folded": m, "gathered": k,
        "flops_added": f}`, `f` the FLOPs (`kslim.profile`'s) that the folded
        and spanned selections' readers compute on the channels they dropped,
        or None unless `count_flops` (it costs two `kslim.profile` walks, which
        only `kslim.export`'s report needs, not a latency measurement).
    """
    selects = [layer for layer in keras_api.all_layers(model) if isinstance(layer, ChannelSelect)]
    nested = nesting.has_nested(model)
    target, ways, added = model, {}, 0 if count_flops else None
    if selects and mode not in ("gather", "slices") and not nested:
        g, tile = Graph(model), _input_tile(quantize) if mode == "auto" else 1
        for node in g.nodes:
            if isinstance(node.op, ChannelSelect):
                ways[node.op.name] = _lowering(g, node, quantize, tile) if mode == "auto" else "whole"
        ways = {name: how for name, how in ways.items() if how != "slices"}
        if ways:
            target = _narrow_selections(model, ways)
            if count_flops:
                added = profile(target).flops - profile(model).flops
    if not nested:
        target = batch_norms_as_depthwise(borders_as_constant_channels(target))
        if quantize == "int8":
            target = average_pools_as_depthwise(target)
    if mode == "gather":
        with _constant_borders(target):
            yield target, {"sliced": 0, "spanned": 0, "folded": 0, "gathered": len(selects),
                            "flops_added": added}
        return
    remaining = [layer for layer in keras_api.all_layers(target) if isinstance(layer, ChannelSelect)]
    spanned = sum(1 for layer in remaining if ways.get(layer.name) == "span")
    try:
        for layer in remaining:
            layer.lower_to_slices = True
        with _constant_borders(target):
            yield target, {"sliced": len(remaining) - spanned, "spanned": spanned,
                           "folded": len(selects) - len(remaining), "gathered": 0, "flops_added": added}
    finally:
        for layer in remaining:
            layer.lower_to_slices = False


@contextlib.contextmanager
def _constant_borders(model):
    """Each `BorderBias` adds its precomputed image while the model is converted, not a convolution
    of ones per call."""
    borders = [layer for layer in keras_api.all_layers(model) if isinstance(layer, BorderBias)]
    try:
        for layer in borders:
            layer.constant_image = keras.ops.convert_to_numpy(layer.bias_image())
        yield
    finally:
        for layer in borders:
            layer.constant_image = None


def _input_tile(quantize):
    """The input-channel tile of this CPU's convolutions for `quantize` (`channel_tile(inputs=True)`,
    measured once and cached), as plans for LiteRT count them; 1 without ai-edge-litert."""
    try:
        return channel_tile(1, quantize, inputs=True)
    except ImportError:
        return 1


def _lowering(g, node, quantize=None, input_tile=1):
    """How selection `node` is best written in a file exported with `quantize`: "slices", "span"
    or "whole" (`budget.selection_lowering`, the reader's input channels in tiles of `input_tile`, as
    the planner counts them); "slices" where zero weights cannot stand in for it (its readers are not
    a chain of single readers up to a producer). Unlike the planner, this charges no `BorderBias`
    image (`border_elements`): in the file a border is not an image added but one input channel of
    ones that the reader reads (`constant_channel`), a dropped channel where the selection is folded,
    one more sliced channel where it is sliced: at most one channel's work."""
    try:
        targets = _fold_targets(g, {node.op.name: None})
    except ValueError:
        return "slices"
    reader = next(n.op for n in g.nodes if n.role == "producer" and n.op.name in targets)
    full = g.shapes[node.inputs[0]][-1]
    out = int(reader.output.shape[-1])
    macs_per_channel = (layer_flops(reader, full, out) - layer_flops(reader, full - 1, out)) / 2
    pixels = int(np.prod([d for d in g.shapes[node.inputs[0]][1:-1] if d]))
    return selection_lowering(list(node.op.indices), full, macs_per_channel, pixels, quantize,
                              input_tile=input_tile)[0]


def _foldable(g, name):
    try:
        _fold_targets(g, {name: None})
    except ValueError:
        return False
    return True


def fold_selections(model, only=None):
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
        only: optional set of `ChannelSelect` layer names to fold; all when None.

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
    selects = {n.op.name for n in g.nodes if isinstance(n.op, ChannelSelect)}
    if only is not None:
        selects &= set(only)
    _fold_targets(g, dict.fromkeys(selects))  # raises for a selection that cannot be folded
    return _narrow_selections(model, dict.fromkeys(selects, "whole"))


def _narrow_selections(model, ways):
    """A copy of `model` in which each selection named in `ways` is "whole" (removed: the layers up to
    its reader take the stream's full width, zero for the dropped channels) or "span" (one run from
    its first kept channel to its last: those layers take the span's width, zero for the dropped
    channels inside it). Selections that zero weights cannot stand in for are left as they are."""
    g = Graph(model)
    ways = {name: how for name, how in ways.items() if _foldable(g, name)}
    spans = {node.op.name: (min(node.op.indices), max(node.op.indices) + 1)
             for node in g.nodes if ways.get(node.op.name) == "span"}
    widen = _fold_targets(g, {name: spans.get(name) for name in ways})
    config, sequential = config_edit.editable(model)
    for entry in config["layers"]:
        if config_edit.entry_name(entry) in spans:
            entry["config"]["indices"] = list(range(*spans[config_edit.entry_name(entry)]))
    config_edit.remove(config, {name for name, how in ways.items() if how == "whole"}, sequential)
    wide = config_edit.rebuild(config, sequential)
    for layer in wide.layers:
        weights = model.get_layer(layer.name).get_weights()
        if layer.name in widen:
            weights = _widen(layer, weights, layer.get_weights(), *widen[layer.name])
        layer.set_weights(weights)
    return wide


def _fold_targets(g, selects):
    """`{layer name: (kept positions, width)}` of the layers that folding widens, for `selects`
    `{selection name: None (folded into the whole stream) or (start, stop) (into a span of it)}`."""
    widen = {}
    for node in g.nodes:
        if not isinstance(node.op, ChannelSelect) or node.op.name not in selects:
            continue
        span = selects[node.op.name] or (0, g.shapes[node.inputs[0]][-1])
        keep, full = [i - span[0] for i in node.op.indices], span[1] - span[0]
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
    return widen


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
