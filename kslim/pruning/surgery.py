"""Plan -> a new, physically smaller Keras model with copied weight slices.

The model's config is edited (`filters`/`units`, no `build_config`, a
`ChannelSelect` before each layer that reads part of a shared stream, folded
`ChannelMask` layers removed), rebuilt with `from_config`, and given the
sliced weights. Layer names are kept; the original model is not touched.
"""

import keras
import numpy as np

from kslim.layers.channel_mask import ChannelMask
from kslim.layers.channel_select import ChannelSelect
from kslim.pruning import compensation, config_edit, rules
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
    allowed = analysis.prunable()
    pruned = set()
    for name, rec in plan.layers.items():
        _, node = by_name[name]
        ids = g.ids[node.outputs[0]] if node.outputs else []
        if rec["channels"][0] != len(ids):
            raise ValueError(
                f"The plan gives layer '{name}' {rec['channels'][0]} channels but the model's "
                f"has {len(ids)}; the plan was made for a different model."
            )
        for j in rec.get("zeroed") or ():
            root = g.group(ids[j])
            if root not in allowed:
                why = analysis.blocked.get(root, "no scaling factor scores it")
                raise ValueError(
                    f"The plan prunes channel {j} of layer '{name}', which cannot be pruned: {why}."
                )
            pruned.add(root)
    widths = analysis.layer_widths(pruned)
    for name, rec in plan.layers.items():
        index, node = by_name[name]
        if index in widths:
            out = widths[index][1]
            expected = None if len(out) == len(g.ids[node.outputs[0]]) else out
            if rec["out"] != expected:
                raise ValueError(
                    f"The plan keeps output channels {rec['out']} of layer '{name}', but the "
                    f"channels it prunes elsewhere leave {expected}; tied layers must keep the "
                    "same channels. Make the plan with kslim.plan rather than by hand."
                )
    return pruned


def rebuild(model, analysis, plan, pruned, compensate=True, rebalance=True):
    """Builds the pruned model. See `kslim.prune`."""
    g = analysis.graph
    records = plan.layers
    nodes = {n.op.name: (i, n) for i, n in enumerate(g.nodes)}
    weights = {}
    for name in records:
        weights[name] = [np.array(w) for w in nodes[name][1].op.get_weights()]
    deltas = _compensation(analysis, pruned, records, nodes) if compensate else {}
    enable_bias = set()
    for name, delta in deltas.items():
        _, node = nodes[name]
        layer = node.op
        if layer.use_bias:
            weights[name][-1] = weights[name][-1] + delta
            continue
        bn = _single_bn_reader(g, node)
        if bn is not None and bn.name in weights:
            weights[bn.name][-2] = weights[bn.name][-2] - delta
        elif bn is not None:
            weights[bn.name] = [np.array(w) for w in bn.get_weights()]
            weights[bn.name][-2] = weights[bn.name][-2] - delta
        else:
            enable_bias.add(name)
            weights[name].append(delta)
    folded = _fold_masks(g, weights)
    if rebalance and folded:
        spread_mask_gains(g, weights, folded, records)
    config = model.get_config()
    is_sequential = isinstance(model, keras.Sequential)
    for entry in config["layers"]:
        entry.pop("build_config", None)
        name = config_edit.entry_name(entry)
        if name in records and records[name]["out"] is not None:
            rules.edit_config(nodes[name][1].op, entry["config"], records[name]["out"])
        if name in enable_bias:
            entry["config"]["use_bias"] = True
    _insert_selects(config, records, is_sequential)
    config_edit.remove(config, set(folded), is_sequential)
    try:
        new = config_edit.rebuild(config, is_sequential)
    except Exception as e:  # the config was edited consistently; say where it broke
        raise ValueError(f"Could not rebuild pruned model '{model.name}': {e}") from e
    for layer in new.layers:
        if isinstance(layer, ChannelSelect):
            continue
        old = model.get_layer(layer.name)
        if layer.name in records:
            rec = records[layer.name]
            node = nodes[layer.name][1]
            in_keep = rec["in"][0] if node.role == "producer" else None
            out_keep = rec["out"]
            layer.set_weights(rules.slice_weights(old, weights[layer.name], in_keep, out_keep))
        elif layer.name in weights:
            layer.set_weights(weights[layer.name])
        else:
            layer.set_weights(old.get_weights())
    return new


def _compensation(analysis, pruned, records, nodes):
    g = analysis.graph
    jobs = []
    for name, rec in records.items():
        _, node = nodes[name]
        if node.role == "producer" and rec["in"][0] is not None:
            dropped = sorted(set(range(len(g.ids[node.inputs[0]]))) - set(rec["in"][0]))
            jobs.append((name, node, dropped))
    values = compensation.constants(analysis, pruned, [n.inputs[0] for _, n, _ in jobs])
    deltas = {}
    for name, node, dropped in jobs:
        delta = compensation.bias_delta(
            node.op, node.op.get_weights(), dropped, values[node.inputs[0]]
        )
        if np.any(delta != 0):
            deltas[name] = delta.astype(np.float32)
    return deltas


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
        axis = -2 if isinstance(producer, rules._TRANSPOSE) else -1
        kernel_index = 1 if isinstance(producer, rules._SEPARABLE) else 0
        shape = [1] * w[kernel_index].ndim
        shape[axis] = -1
        w[kernel_index] = w[kernel_index] * mask.reshape(shape)
        for i in range(kernel_index + 1, len(w)):
            w[i] = w[i] * mask
        weights[producer.name] = w
        folded[node.op.name] = producer.name
    return folded


def _insert_selects(config, records, is_sequential):
    for name, rec in list(records.items()):
        if rec.get("select") is None:
            continue
        select = ChannelSelect(rec["select"], name=config_edit.unique_name(config, f"{name}_select"))
        entry = keras.saving.serialize_keras_object(select)
        entry.pop("build_config", None)
        config_edit.insert_before(config, name, entry, is_sequential)
