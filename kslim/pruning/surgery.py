"""Plan -> a new, physically smaller Keras model with copied weight slices.

The model's config is edited (`filters`/`units`, no `build_config`, a
`ChannelSelect` before each layer that reads part of a shared stream, folded
`ChannelMask` layers removed), rebuilt with `from_config`, and given the
sliced weights. Layer names are kept; the original model is not touched.
"""

import keras
import numpy as np

from kslim.layers.border_bias import BorderBias
from kslim.layers.channel_mask import ChannelMask
from kslim.layers.channel_select import ChannelSelect
from kslim._internal import keras_api
from kslim.pruning import compensation, config_edit, nesting
from kslim.pruning.handlers import get_handler
from kslim.pruning.rebalance import spread_mask_gains


def pruned_groups(analysis, plan):
    """The group roots a plan prunes; checks that the plan fits the model."""
    g = analysis.graph
    by_name = {n.op.name: (i, n) for i, n in enumerate(g.nodes)}
    unknown = sorted(set(plan.layers) - set(by_name))
    if unknown:
        raise ValueError(
            f"The plan was made for model '{plan.model_name}' and names layers {unknown[:5]} "
            f"that model '{g.model.name}' does not have; make a new plan for this model."
        )
    # The plan's layers may all exist in another model with the same widths (a subset of its layers):
    # the classes and the whole model's size say whether it is the model the plan was made for.
    before = analysis.cost(set())
    if [before[0], before[1]] != [plan.params[0], plan.flops[0]]:
        raise ValueError(
            f"The plan was made for a model of {plan.params[0]:,} parameters and {plan.flops[0]:,} FLOPs "
            f"('{plan.model_name}'), but model '{g.model.name}' has {before[0]:,} and {before[1]:,}; make a "
            "new plan for this model."
        )
    allowed = analysis.prunable()
    pruned = set()
    for name, rec in plan.layers.items():
        _, node = by_name[name]
        if rec.get("class", type(node.op).__name__) != type(node.op).__name__:
            raise ValueError(
                f"The plan's layer '{name}' is a {rec['class']}, but model '{g.model.name}' has a "
                f"{type(node.op).__name__} of that name; the plan was made for a different model."
            )
        ids = g.ids[node.outputs[0]] if node.outputs else []
        if rec["channels"][0] != len(ids):
            raise ValueError(
                f"The plan gives layer '{name}' {rec['channels'][0]} channels but the model's "
                f"has {len(ids)}; the plan was made for a different model."
            )
        for j in rec.get("zeroed") or ():
            if not isinstance(j, int) or not 0 <= j < len(ids):
                raise ValueError(
                    f"The plan prunes channel {j!r} of layer '{name}', which has channels 0 to "
                    f"{len(ids) - 1}; the plan was made for a different model or edited by hand."
                )
            root = g.group(ids[j])
            if root not in allowed:
                why = analysis.blocked.get(root, "no scaling factor scores it")
                raise ValueError(
                    f"The plan prunes channel {j} of layer '{name}', which cannot be pruned: {why}."
                )
            pruned.add(root)
    # A stream channel that every reader prunes went at its producer (Analysis.close), unless the
    # producer's floors kept it: the plan says which, by the producer's outputs.
    dropped = set()
    for name, rec in plan.layers.items():
        node = by_name[name][1]
        if node.role == "producer" and rec["out"] is not None:
            kept = set(rec["out"])
            dropped |= {g.group(c) for j, c in enumerate(g.ids[node.outputs[0]]) if j not in kept}
    pruned |= {r for r, readers in analysis.streams.items() if r in dropped and readers <= pruned}
    pruned = analysis.bury(pruned)  # a layer the plan removes whole takes the layers that only feed it
    widths = analysis.layer_widths(pruned, ordered=False)  # the order is the analysis's to choose
    for name, rec in plan.layers.items():
        index, node = by_name[name]
        if index in widths:
            out, full = widths[index][1], len(g.ids[node.outputs[0]])
            if (list(range(full)) if rec["out"] is None else sorted(rec["out"])) != out:
                raise ValueError(
                    f"The plan keeps output channels {rec['out']} of layer '{name}', but the "
                    f"channels it prunes elsewhere leave {out}; tied layers must keep the "
                    "same channels. Make the plan with kslim.plan rather than by hand."
                )
    return pruned


def rebuild(model, analysis, plan, pruned, compensate=True, rebalance=True):
    """Builds the pruned model. See `kslim.prune`."""
    g = analysis.graph
    dead = {g.nodes[i].op.name for i in analysis.dead_nodes(pruned)}
    records = {name: rec for name, rec in plan.layers.items() if name not in dead}
    nodes = {n.op.name: (i, n) for i, n in enumerate(g.nodes)}
    weights = {}
    for name in records:
        weights[name] = [np.array(w) for w in nodes[name][1].op.get_weights()]
    deltas, borders = _compensation(analysis, pruned, records, nodes, compensate) if compensate else ({}, {})
    enable_bias = set()
    for name, delta in deltas.items():
        _, node = nodes[name]
        layer = node.op
        if name in borders:  # a BorderBias after the layer adds it, position by position
            continue
        handler = get_handler(layer)
        index = handler.bias_index(layer)
        if index is not None:
            weights[name][index] = weights[name][index] + delta
            continue
        bn = _single_bn_reader(g, node)
        if bn is not None:
            if bn.name not in weights:
                weights[bn.name] = [np.array(w) for w in bn.get_weights()]
            weights[bn.name][-2] = weights[bn.name][-2] - delta
        else:
            enable_bias.add(name)
            weights[name].append(delta)
    folded = _fold_masks(g, weights)
    if rebalance and folded:
        spread_mask_gains(g, weights, folded, records)
    into_bn = _fold_masks_into_bn(g, weights)
    folded.update(into_bn)
    edit = _config_editor(records, nodes, enable_bias, _split_widths(analysis, pruned), set(into_bn.values()))
    for name in list(borders):  # a BorderBias of an earlier pass already follows the layer: add to it
        readers = g.consumers[nodes[name][1].outputs[0]]
        reader = g.nodes[readers[0]].op if len(readers) == 1 else None
        if isinstance(reader, BorderBias):
            kernel = weights.get(reader.name) or [np.array(w) for w in reader.get_weights()]
            weights[reader.name] = [kernel[0] + borders.pop(name)[0].astype(np.float32)]
    added = _border_layers(model, borders, records)
    try:
        if isinstance(model, keras.Sequential):
            new = _rebuild_from_config(model, records, edit, folded, added)
        else:
            new = _clone(model, records, edit, folded, added, dead)
    except Exception as e:  # the configs were edited consistently; say where it broke
        raise nesting.layer_rebuild_error(model) or ValueError(
            f"Could not rebuild pruned model '{model.name}': {e}") from e
    kernels = {border.name: kernel for border, kernel in added.values()}
    for layer in new.layers:
        if layer.name in kernels:
            layer.set_weights([kernels[layer.name]])
            continue
        if isinstance(layer, ChannelSelect):
            continue
        old = model.get_layer(layer.name)
        if layer.name in records:
            rec = records[layer.name]
            node = nodes[layer.name][1]
            in_keep = rec["in"][0] if node.role == "producer" else None
            out_keep = rec["out"]
            sliced = get_handler(old).slice_weights(old, weights[layer.name], in_keep, out_keep)
            layer.set_weights(sliced)
        elif layer.name in weights:
            layer.set_weights(weights[layer.name])
        else:
            layer.set_weights(old.get_weights())
    return new


def _split_widths(analysis, pruned):
    """`{name: output widths}` of each `ops.split` whose outputs lose channels."""
    g = analysis.graph
    out = {}
    for node in g.nodes:
        if node.role == "split":
            widths = [len(analysis.alive(k, pruned)) for k in node.outputs]
            if widths != [len(g.ids[k]) for k in node.outputs]:
                out[node.op.name] = widths
    return out


def _config_editor(records, nodes, enable_bias, splits, scaled_bns):
    """A function that edits one layer's (or keras.ops call's) config in place for its pruned width."""

    def edit(name, config):
        if name in scaled_bns:  # a folded mask became its gamma
            config["scale"] = True
        if name in splits:
            op = nodes[name][1].op
            get_handler(op).split_config(config, splits[name])
        if name in records and records[name]["out"] is not None:
            op = nodes[name][1].op
            get_handler(op).edit_config(op, config, records[name]["out"])
        if name in enable_bias:
            op = nodes[name][1].op
            if not get_handler(op).enable_bias(op, config):
                raise ValueError(
                    f"Cannot fold the constant of pruned channels into '{name}' "
                    f"({type(op).__name__}): its handler has no bias and cannot add one, and no "
                    "BatchNormalization reads it alone. Give the handler bias_index/enable_bias, "
                    "or prune with compensate=False."
                )

    return edit


def _border_layers(model, borders, records):
    """`{producer name: (BorderBias layer, its kernel)}` for the producers whose fold is position-dependent."""
    taken = {layer.name for layer in model.layers}
    added = {}
    for name, (kernel, layer) in borders.items():
        out = records[name]["out"] if name in records else None
        if out is not None:
            kernel = kernel[..., out]
        spatial, padding = _border_geometry(layer)
        transposed = {"transpose": True, "output_padding": layer.output_padding} if isinstance(
            layer, _TRANSPOSED) else {}
        border = BorderBias(
            spatial, layer.kernel_size, layer.strides, layer.dilation_rate, padding=padding,
            name=_unique(taken, f"{name}_border"), **transposed,
        )
        added[name] = (border, kernel.astype(np.float32))
    return added


def _clone(model, records, edit, folded, added, dead=()):
    """The functional model rebuilt layer by layer (`keras.models.clone_model`).

    Each layer is made from its own edited config; a `ChannelSelect` goes in
    front of each layer that reads part of a shared stream, and folded masks
    are skipped, as are the `dead` layers (`Analysis.dead_nodes`): a
    concatenation leaves out their outputs, and one left with a single input
    passes it on. Cheaper than `Model.from_config` of the whole model config,
    which would serialize and deserialize every layer and every connection.
    """
    taken = {layer.name for layer in model.layers}
    selects = {}
    for name, rec in records.items():
        if rec.get("select") is not None:
            selects[name] = (rec["select"], _unique(taken, f"{name}_select"))

    initializers = {}

    def clone_function(layer):
        if layer.name in dead:  # never called
            return layer
        config = keras_api.layer_config(layer)
        edit(layer.name, config)
        # Every weight is overwritten right after the rebuild, so drawing random initial values
        # is wasted work (a quarter of from_config on TensorFlow, an XLA compile per shape on
        # JAX). Build with zeros, then put the layer's own initializers back.
        keys = [k for k in config if k.endswith("_initializer") and hasattr(layer, k)]
        initializers[layer.name] = {k: config[k] for k in keys}
        config.update(dict.fromkeys(keys, "zeros"))
        new = layer.__class__.from_config(config)
        if new.name != layer.name:  # KerasHub's MobileNet blocks append "_0" to their name in from_config
            new.name = layer.name
        return new

    def call_function(layer, *args, **kwargs):
        if layer.name in dead:
            return _REMOVED
        if isinstance(layer, keras.layers.Concatenate) and any(x is _REMOVED for x in args[0]):
            kept = [x for x in args[0] if x is not _REMOVED]
            if len(kept) == 1:
                return kept[0]
            args = (kept,) + args[1:]
        if layer.name in folded:
            return args[0]
        if layer.name in selects:
            indices, name = selects[layer.name]
            args = (ChannelSelect(indices, name=name)(args[0]),) + args[1:]
        outputs = layer(*args, **kwargs)  # builds the layer
        for key, value in initializers.pop(layer.name, {}).items():
            setattr(layer, key, keras.initializers.get(value))
        if layer.name in added:
            outputs = added[layer.name][0](outputs)
        return outputs

    def new_input(tensor):  # keeps the input layers' names (clone_model would rename them)
        name = keras_api.producing_operation(tensor).name
        return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, name=name)

    with keras_api.unsafe_deserialization():  # in-memory layers: a Lambda is the user's code
        return keras.models.clone_model(
            model,
            input_tensors=keras.tree.map_structure(new_input, model.input),
            clone_function=clone_function,
            call_function=call_function,
        )


class _Removed:
    """What a layer left out of the pruned model returns while it is rebuilt; no layer reads it."""


_REMOVED = _Removed()


def _layer_or_none(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def _rebuild_from_config(model, records, edit, folded, added):
    """A Sequential model rebuilt from its edited config (it has no call_function hook)."""
    config = model.get_config()
    for entry in config["layers"]:
        entry.pop("build_config", None)
        name = config_edit.entry_name(entry)
        layer = _layer_or_none(model, name)
        if layer is not None:
            keras_api.complete_config(layer, entry["config"])
        edit(name, entry["config"])
    for name, (border, _) in added.items():
        entry = keras.saving.serialize_keras_object(border)
        entry.pop("build_config", None)
        config_edit.insert_after(config, name, entry, True)
    _insert_selects(config, records, True)
    config_edit.remove(config, set(folded), True)
    return config_edit.rebuild(config, True)


def _unique(taken, base):
    name = base
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _compensation(analysis, pruned, records, nodes, mode=True):
    """`(deltas, borders)`: per producer, what the dropped constant inputs added to each output channel
    (interior value), and for the producers where that differs on zero-padded borders (and `mode` is
    not "interior") the `BorderBias` kernel that adds it exactly, with the layer."""
    g = analysis.graph
    zeros = None
    jobs = []
    for name, rec in records.items():
        _, node = nodes[name]
        if node.role == "producer" and rec["in"][0] is not None:
            dropped = sorted(set(range(len(g.ids[node.inputs[0]]))) - set(rec["in"][0]))
            if zeros is None:
                zeros = compensation.known_zeros(analysis, pruned)
            if not zeros[node.inputs[0]][dropped].all():  # else there is nothing to fold
                jobs.append((name, node, dropped))
    values = compensation.constants(analysis, pruned, [n.inputs[0] for _, n, _ in jobs])
    deltas, borders = {}, {}
    for name, node, dropped in jobs:
        weights = node.op.get_weights()
        delta = get_handler(node.op).bias_delta(node.op, weights, dropped, values[node.inputs[0]])
        if np.any(delta != 0):
            deltas[name] = delta.astype(np.float32)
            if mode != "interior" and _border_geometry(node.op) is not None:
                c = np.asarray(values[node.inputs[0]], np.float64)[dropped]
                borders[name] = (_border_kernel(node.op, weights, dropped, c)[..., None, :], node.op)
    return deltas, borders


def _border_kernel(layer, weights, dropped, c):
    """`(*kernel_size, out)`: per tap, what the dropped constant inputs `c` add to each output channel."""
    if isinstance(layer, _SEPARABLE):  # depthwise taps, then the 1x1 pointwise mix
        depthwise, pointwise = weights[0], weights[1]
        m = depthwise.shape[-1]
        pw = pointwise.reshape(-1, m, pointwise.shape[-1])[dropped]  # (d, m, out)
        return np.einsum("d,...dm,dmo->...o", c, depthwise[..., dropped, :], pw)
    if isinstance(layer, _TRANSPOSED):  # kernels (spatial..., out, in)
        return np.tensordot(weights[0][..., dropped], c, axes=([-1], [0]))
    return np.tensordot(weights[0][..., dropped, :], c, axes=([-2], [0]))


_SEPARABLE = (keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)
_TRANSPOSED = keras_api.TRANSPOSED_CONVS
_ZERO_PADDING = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D, keras.layers.ZeroPadding3D)


def _border_geometry(layer):
    """`(input spatial shape, padding)` of a `BorderBias` for `layer`, or None where a dropped constant
    input adds the same value at every output position.

    It is needed by a plain or separable convolution with a kernel wider than 1, a linear activation (the BorderBias
    goes after it) and a static input size, that either pads with zeros itself (padding="same") or
    reads a ZeroPadding layer (padding="valid": then the padding is the ZeroPadding's). And by a
    transposed convolution with a linear activation and a static input size, unless both its kernel
    and its strides are 1: it scatters each input position over a window, so a constant input gives
    a different value at each position of a stride period and on the border.
    """
    if isinstance(layer, _TRANSPOSED):
        if layer.data_format != "channels_last" or getattr(layer.activation, "__name__", "") != "linear":
            return None
        if all(k == 1 for k in layer.kernel_size) and all(s == 1 for s in layer.strides):
            return None
        spatial = layer.input.shape[1:-1]
        return None if None in spatial else (tuple(spatial), layer.padding)
    if not isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D) + _SEPARABLE):
        return None
    if getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last":
        return None
    if all(k == 1 for k in layer.kernel_size) or getattr(layer.activation, "__name__", "") != "linear":
        return None
    if layer.padding == "same":
        spatial, padding = layer.input.shape[1:-1], "same"
    else:
        pad = keras_api.producing_operation(layer.input)
        if not isinstance(pad, _ZERO_PADDING) or getattr(pad, "data_format", "channels_last") != "channels_last":
            return None
        spatial, padding = pad.input.shape[1:-1], _pairs(pad.padding)
    return None if None in spatial else (tuple(spatial), padding)


def _pairs(padding):
    """A ZeroPadding layer's padding as `((before, after), ...)`: Keras keeps ZeroPadding1D's as
    `(before, after)` and the others' as one pair per spatial axis."""
    if all(isinstance(p, int) for p in padding):
        return (tuple(padding),)
    return tuple(tuple(p) for p in padding)


def _single_bn_reader(g, node):
    readers = g.consumers[node.outputs[0]]
    if len(readers) == 1:
        op = g.nodes[readers[0]].op
        if isinstance(op, keras.layers.BatchNormalization):
            return op
    return None


def _fold_masks(g, weights):
    """Folds each ChannelMask right after a linear producer into its weights."""
    folded = {}
    for node in g.nodes:
        if not isinstance(node.op, ChannelMask):
            continue
        src = [n for n in g.nodes if node.inputs[0] in n.outputs]
        if len(src) != 1 or src[0].role != "producer" or len(g.consumers[node.inputs[0]]) != 1:
            continue
        producer = src[0].op
        if getattr(producer.activation, "__name__", "") != "linear":
            continue
        mask = np.array(keras.ops.convert_to_numpy(node.op.mask))
        w = weights.get(producer.name) or [np.array(x) for x in producer.get_weights()]
        weights[producer.name] = get_handler(producer).scale_outputs(producer, w, mask)
        folded[node.op.name] = producer.name
    return folded


def _fold_masks_into_bn(g, weights):
    """Folds each ChannelMask right after a BatchNormalization(scale=False) into it, as its gamma.

    mask * ((x - mean) / sd + beta) is a BN with gamma = mask and beta = mask * beta.
    """
    folded = {}
    for node in g.nodes:
        if not isinstance(node.op, ChannelMask):
            continue
        src = [n for n in g.nodes if node.inputs[0] in n.outputs]
        if len(src) != 1 or len(g.consumers[node.inputs[0]]) != 1:
            continue
        bn = src[0].op
        if not isinstance(bn, keras.layers.BatchNormalization) or bn.scale or src[0].role != "per_channel":
            continue
        mask = np.array(keras.ops.convert_to_numpy(node.op.mask))
        w = weights.get(bn.name) or [np.array(x) for x in bn.get_weights()]
        if bn.center:
            w = [mask, w[0] * mask] + w[1:]
        else:
            w = [mask] + w
        weights[bn.name] = w
        folded[node.op.name] = bn.name
    return folded


def _insert_selects(config, records, is_sequential):
    for name, rec in list(records.items()):
        if rec.get("select") is None:
            continue
        select = ChannelSelect(rec["select"], name=config_edit.unique_name(config, f"{name}_select"))
        entry = keras.saving.serialize_keras_object(select)
        entry.pop("build_config", None)
        config_edit.insert_before(config, name, entry, is_sequential)
