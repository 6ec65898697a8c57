"""Which channel groups can be pruned, how each is scored, and what a decision does to each layer."""

import math

import keras
import numpy as np

from kslim._internal import keras_api
from kslim.pruning.handlers import LayerHandler, get_handler
from kslim.pruning.graph import Graph
from kslim.pruning.permutation import Streams

_WEIGHTED = ("producer", "scale", "per_channel", "reshape")


class Analysis:
    """Groups of tied channels with their scores, and the layers they touch.

    Attributes:
        graph: the `Graph`.
        score: dict group root -> max |scaling factor| over the group.
        size: dict group root -> number of scaling factors in the group.
        blocked: dict group root -> why it cannot be pruned (only for
            groups that have a scaling factor).
        streams: dict group root -> frozenset of group roots, for each
            channel of a shared stream that has no scaling factor of its own
            (a DenseNet growth layer's output, a pre-activation residual
            sum) and is read only through the scaling factors of its readers
            (their BNs): those readers' groups. When every one of them is
            pruned, the channel itself goes: its producer stops computing
            it and the stream stops carrying it (`close`). Such a channel
            that some layer reads directly is not listed.
    """

    def __init__(self, model, exclude=()):
        self.graph = graph = Graph(model)
        names = {n.op.name for n in graph.nodes}
        unknown = sorted(set(exclude) - names)
        if unknown:
            raise ValueError(
                f"exclude names layers {unknown} that are not in model '{model.name}'; "
                f"valid names include {sorted(names)[:8]}..."
            )
        self._anc, self._key_anc, self._costs = {}, {}, {}
        self.blocked = {}
        _check_finite(graph)
        self.rescore()
        self._stream_of = self._stream_parents()  # unmerged child id -> its parent's group, if unscored
        candidates = set(self._stream_of.values())
        self._check_safety(set(exclude), candidates)
        streams = {}
        for child, parent in self._stream_of.items():
            streams.setdefault(parent, set()).add(graph.group(child))
        self.streams = {r: frozenset(c) for r, c in streams.items() if r not in self._stream_blocked}

    def _stream_parents(self):
        """dict channel id -> parent group root, for each scaling factor's channel that reads a shared
        stream (a child not merged with its parent) whose channel has no scaling factor of its own."""
        g = self.graph
        found = {}
        for channel, kind in enumerate(g.kind):
            if kind[0] == "child" and channel not in g.merged:
                parent = g.group(kind[2])
                if parent not in self.score:
                    found[channel] = parent
        return found

    def close(self, pruned):
        """`pruned` and every shared stream channel (`streams`) whose readers all prune it."""
        pruned = set(pruned)
        return pruned | {r for r, readers in self.streams.items() if readers <= pruned}

    # --- whole layers --------------------------------------------------------------
    @property
    def removable(self):
        """Node indices of the producers that can go whole: each writes only into concatenations
        (a DenseNet growth layer), so once every channel it computes is pruned (`close`) the
        concatenation can drop it instead of the layer keeping `min_channels` that no one reads."""
        if not hasattr(self, "_removable"):
            g, outputs = self.graph, set(self.graph.output_keys)
            self._removable = frozenset(
                i for i, n in enumerate(g.nodes)
                if n.role == "producer" and n.outputs[0] not in outputs and g.consumers[n.outputs[0]]
                and all(isinstance(g.nodes[j].op, keras.layers.Concatenate) for j in g.consumers[n.outputs[0]])
            )
        return self._removable

    def dead_nodes(self, pruned):
        """The node indices a model pruned by `pruned` leaves out: each removable producer (`removable`)
        whose every output channel is pruned, and every layer whose outputs only they read. Empty
        unless a plan let such a producer lose all its channels (`apply_floors(remove_layers=True)`).
        A concatenation keeps at least its first input."""
        g = self.graph
        removed = {i for i in self.removable if all(g.group(c) in pruned for c in g.ids[g.nodes[i].outputs[0]])}
        if not removed:
            return frozenset()
        for j in {j for i in removed for j in g.consumers[g.nodes[i].outputs[0]]}:
            sources = [self._producer_of(k) for k in g.nodes[j].inputs]
            if all(s in removed for s in sources):
                removed.discard(sources[0])
        dead, outputs = set(removed), set(g.output_keys)
        for i in range(len(g.nodes) - 1, -1, -1):
            node = g.nodes[i]
            if i in dead or node.role == "input" or outputs.intersection(node.outputs):
                continue
            readers = [j for k in node.outputs for j in g.consumers[k]]
            if readers and all(j in dead for j in readers):
                dead.add(i)
        return frozenset(dead)

    def _producer_of(self, key):
        if not hasattr(self, "_made_by"):
            self._made_by = {k: i for i, n in enumerate(self.graph.nodes) for k in n.outputs}
        return self._made_by.get(key)

    def bury(self, pruned):
        """`pruned` with every group that only the layers it leaves out (`dead_nodes`) carry: their
        channels go with them (counted as pruned, their factors zeroed in the masked model)."""
        dead = self.dead_nodes(pruned)
        if not dead:
            return set(pruned)
        g = self.graph
        if not hasattr(self, "_carriers"):  # group root -> the nodes whose outputs carry it
            self._carriers = {}
            for i, n in enumerate(g.nodes):
                for key in n.outputs:
                    for c in g.ids[key]:
                        self._carriers.setdefault(g.group(c), set()).add(i)
        out = set(pruned)
        for i in dead:
            for key in g.nodes[i].outputs:
                for c in g.ids[key]:
                    root = g.group(c)
                    if root not in out and root not in self.blocked and self._carriers[root] <= dead:
                        out.add(root)
        return out

    def group_score(self, root):
        """A group's score: its largest |scaling factor|, or for a stream channel its readers' largest."""
        if root in self.score:
            return self.score[root]
        return max(self.score[r] for r in self.streams[root])

    def rescore(self):
        """Reads the scaling factors again (after more training): updates `score` and `size`."""
        graph = self.graph
        self.score, self.size = {}, {}
        for node in graph.nodes:
            if node.role != "scale":
                continue
            attr = get_handler(node.op).scaling_factor(node.op)
            values = np.abs(keras.ops.convert_to_numpy(getattr(node.op, attr)))
            for pos, channel in enumerate(graph.ids[node.outputs[0]]):
                root = graph.group(channel)
                self.score[root] = max(self.score.get(root, 0.0), float(values[pos]))
                self.size[root] = self.size.get(root, 0) + 1

    def ancestors(self, channel):
        if channel not in self._anc:
            self._anc[channel] = frozenset(self.graph.ancestors(channel))
        return self._anc[channel]

    def _block(self, root, reason):
        if root in self._stream_candidates:
            self._stream_blocked.add(root)
        elif root in self.score and root not in self.blocked:
            self.blocked[root] = reason

    def _check_safety(self, exclude, streams=()):
        """Blocks groups that some layer would read as a non-constant once pruned; `streams`, the
        candidate stream channels, likewise (a stream channel goes with every reader's factor, so a
        layer that reads it through them reads a constant)."""
        g = self.graph
        self._stream_candidates, self._stream_blocked = set(streams), set()
        for channel, kind in enumerate(g.kind):
            if kind[0] in ("input", "barrier"):
                self._block(g.group(channel), kind[1])
        constant = {key: [frozenset()] * len(g.ids[key]) for key in g.input_keys}
        self._zero = {key: [frozenset()] * len(g.ids[key]) for key in g.input_keys}
        for index, node in enumerate(g.nodes):
            ins = [constant.get(k) for k in node.inputs]
            zero_ins = [self._zero.get(k) for k in node.inputs]
            if node.op.name in exclude:
                for key in node.outputs:
                    for channel in g.ids[key]:
                        self._block(g.group(channel), f"layer '{node.op.name}' is excluded")
            if node.role == "barrier":  # it may use every channel: keep them all
                for key in node.inputs:
                    self._check_reader(key, None, node.reason)
            elif node.role == "producer":
                why = f"'{node.op.name}' would read a non-constant channel once it is pruned"
                for key, sets in zip(node.inputs, ins):
                    self._check_reader(key, sets, why)
                if _unfoldable_constant(node.op):
                    why = (f"'{node.op.name}' is a transposed convolution of unknown input size: what a "
                           "constant channel adds to it differs by position and cannot be folded")
                    for key, sets in zip(node.inputs, zero_ins):
                        self._check_reader(key, sets, why)  # only channels that become exactly 0 go
            for key in node.outputs:
                constant[key] = self._propagate(node, index, ins, key, zero_ins)
                self._zero[key] = self._propagate_zero(node, zero_ins, key)
        for key in g.output_keys:
            self._check_reader(key, None, "it is a model output")

    def _check_reader(self, key, sets, why):
        """Blocks the groups a reader of `key` needs; `sets=None` means it needs them all."""
        for j, channel in enumerate(self.graph.ids[key]):
            for root in self.ancestors(channel):
                if sets is None or root not in sets[j]:
                    self._block(root, why)

    def _propagate_zero(self, node, ins, key):
        """For each output channel, the groups whose zeroing makes it exactly 0 (not just constant).

        A zeroed BN gamma leaves beta, a zeroed ChannelMask leaves 0; 0 survives layers that map 0
        to 0 (positively homogeneous ones), sums of zeros, and products with a zero.
        """
        g = self.graph
        width = len(g.ids[key])
        if node.role == "scale":
            emits = _emits_zero(node.op, width)
            return [s | self._factor_groups(c) if emits[j] else s
                    for j, (s, c) in enumerate(zip(ins[0], g.ids[key]))]
        if node.role in ("per_channel", "reshape"):
            return ins[0] if get_handler(node.op).keeps_zero(node.op) else [frozenset()] * width
        if node.role in ("flatten", "concat", "split", "merge", "multiply"):
            return self._propagate(node, None, ins, key, ins, zero=True)
        return [frozenset()] * width

    def _propagate(self, node, index, ins, key, zero_ins=None, zero=False):
        """For each output channel, the groups whose zeroing makes it constant.

        A product is constant when all its factors are, or when one of them is 0 (`zero_ins`):
        a constant beta times a gate that varies is not constant.
        """
        g = self.graph
        width = len(g.ids[key])
        if node.role in ("per_channel", "reshape"):
            return ins[0]
        if node.role == "scale":
            return [s | self._factor_groups(c) for s, c in zip(ins[0], g.ids[key])]
        if node.role == "flatten":
            return ins[0] * (width // max(len(ins[0]), 1))
        if node.role == "concat":
            return [s for sets in ins for s in sets]
        if node.role == "split":
            start = _split_start(g, node, key)
            return ins[0][start:start + width]
        if node.role in ("merge", "multiply"):
            out = []
            for j in range(width):
                parts = [sets[j] if len(sets) == width else sets[0] for sets in ins]
                both = frozenset.intersection(*parts)
                if node.role == "multiply":
                    zeros = parts if zero else [z[j] if len(z) == width else z[0] for z in zero_ins]
                    both |= frozenset.union(*zeros)
                out.append(both)
            return out
        return [frozenset()] * width

    def _factor_groups(self, channel):
        """The groups whose pruning zeroes the scaling factor of `channel`: its own, and the stream
        channel it reads if that one has no factor of its own (it goes with all its readers' factors)."""
        own = {self.graph.group(channel)}
        return own | {self._stream_of[channel]} if channel in self._stream_of else own

    # --- decisions -----------------------------------------------------------------
    def prunable(self):
        """Group roots that may be pruned, with their scores."""
        return {r: s for r, s in self.score.items() if r not in self.blocked}

    def key_ancestors(self, key):
        """The ancestor sets of every channel of a tensor (cached)."""
        if key not in self._key_anc:
            self._key_anc[key] = [self.ancestors(c) for c in self.graph.ids[key]]
        return self._key_anc[key]

    def alive(self, key, pruned, ranks=None):
        """Positions of a tensor's channels that survive when `pruned` groups go, in the order the
        pruned model holds them (`ranks`, from `stream_ranks`; the original order without)."""
        kept = [j for j, anc in enumerate(self.key_ancestors(key)) if anc.isdisjoint(pruned)]
        if ranks and key in ranks:
            kept.sort(key=ranks[key].__getitem__)
        return kept

    def stream_ranks(self, pruned):
        """The channel order of each permuted stream for `pruned` (`kslim.pruning.permutation`)."""
        if not hasattr(self, "_streams"):
            self._streams = Streams(self.graph)
        return self._streams.ranks(self, pruned)

    def units(self):
        """`(node index, [ancestor sets of its output channels])` for every layer with a width."""
        g = self.graph
        return [
            (i, self.key_ancestors(n.outputs[0]))
            for i, n in enumerate(g.nodes)
            if n.role in ("producer", "scale")
        ]

    def apply_floors(self, pruned, min_channels=1, round_to=1, max_layer_ratio=None, round_inputs_to=1,
                     round_narrow=False, remove_layers=False):
        """Restores pruned groups until every layer keeps its floor; returns the new set. With
        `round_narrow` (plans for LiteRT, where a convolution's outputs cost whole tiles) a layer no
        wider than `round_to` is rounded too: it keeps all its channels. With `remove_layers`, a
        removable producer (`removable`) that loses every channel goes whole instead (`bury`)."""
        pruned = set(pruned)
        units = self.units()
        changed = True
        while changed:
            changed = False
            gone = self.dead_nodes(pruned) if remove_layers else ()
            for i, anc in units:
                n = len(anc)
                kept = sum(1 for a in anc if not (a & pruned))
                if kept == 0 and i in gone:  # removed whole (a concatenation keeps one input)
                    continue
                need = min_channels
                if max_layer_ratio is not None:
                    need = max(need, math.ceil(round((1.0 - max_layer_ratio) * n, 9)))
                # round_to rounds what a layer computes (a producer's outputs), not what a stream reader
                # takes from the stream, and not a layer within one multiple unless `round_narrow`;
                # round_inputs_to rounds what its readers take in, whatever its width.
                tile = math.lcm(round_to if n > round_to or round_narrow else 1, round_inputs_to)
                if tile > 1 and kept < n and self.graph.nodes[i].role == "producer":
                    need = max(need, math.ceil(max(kept, need) / tile) * tile)
                need = min(need, n)
                if kept >= need:
                    continue
                dead = [a & pruned for a in anc if a & pruned]
                dead.sort(key=lambda groups: -max(self.group_score(r) for r in groups))
                for groups in dead[: need - kept]:
                    pruned -= groups
                changed = True
        return pruned

    def layer_widths(self, pruned, ordered=True):
        """dict node index -> (alive input positions per input, alive output positions), in the
        pruned model's channel order (the original order with `ordered=False`, for counting)."""
        g = self.graph
        cache = {}
        ranks = self.stream_ranks(pruned) if ordered else None

        def alive(key):
            if key not in cache:
                cache[key] = self.alive(key, pruned, ranks)
            return cache[key]

        return {
            i: ([alive(k) for k in n.inputs], alive(n.outputs[0]))
            for i, n in enumerate(g.nodes)
            if n.role in _WEIGHTED
        }

    def layer_costs(self, pruned):
        """dict node index -> (params, flops) of each layer with a width, after pruning."""
        memo = frozenset(pruned)
        if memo not in self._costs:
            if len(self._costs) > 4:  # bisection asks for many sets; keep the last few
                self._costs.pop(next(iter(self._costs)))
            self._costs[memo] = self._layer_costs(pruned)
        return self._costs[memo]

    def _layer_costs(self, pruned):
        costs = {}
        for i, (ins, out) in self.layer_widths(pruned, ordered=False).items():
            node = self.graph.nodes[i]
            n_in = len(ins[0]) if node.role == "producer" else len(out)
            costs[i] = (
                get_handler(node.op).count_params(node.op, n_in, len(out)),
                layer_flops(node.op, n_in, len(out)),
            )
        return costs

    def cost(self, pruned):
        """(params, flops) of the whole model after pruning `pruned` groups."""
        if not hasattr(self, "_full"):
            self._full = self.layer_costs(set())
            self._other_flops = sum(
                layer_flops(n.op, _width(self.graph.shapes[n.inputs[0]]), _width(self.graph.shapes[n.outputs[0]]))
                for i, n in enumerate(self.graph.nodes)
                if i not in self._full and n.role != "input" and isinstance(n.op, keras.layers.Layer)
            )
        after = self.layer_costs(pruned)
        params = self.graph.model.count_params() + sum(
            after[i][0] - self._full[i][0] for i in after
        )
        return params, self._other_flops + sum(f for _, f in after.values())


_TRANSPOSED = keras_api.TRANSPOSED_CONVS


def _unfoldable_constant(layer):
    """Whether a constant input channel of `layer` adds a position-dependent image that `kslim.prune` cannot
    fold: a transposed convolution (other than 1x1 at stride 1) whose input size is unknown, so that no
    `BorderBias` image can be computed for it."""
    if not isinstance(layer, _TRANSPOSED):
        return False
    if all(k == 1 for k in layer.kernel_size) and all(s == 1 for s in layer.strides):
        return False
    return None in tuple(layer.input.shape[1:-1])


def _check_finite(graph):
    """Refuses a model with a NaN or infinite weight, naming the layer: a non-finite scaling factor has no
    rank (every comparison with NaN is false, so a plan would be arbitrary), and any other non-finite weight
    makes the model compute NaN or Inf, which a pruned model, having dropped some of those weights, would not
    reproduce."""
    for node in graph.nodes:
        layer = node.op
        factor = get_handler(layer).scaling_factor(layer) if node.role == "scale" else None
        for variable in getattr(layer, "weights", ()):  # a keras.ops call has none
            values = keras.ops.convert_to_numpy(variable)
            bad = ~np.isfinite(values)
            if not bad.any():
                continue
            name = variable.path.rsplit("/", 1)[-1] if hasattr(variable, "path") else variable.name
            what = (f"{int(np.isnan(values).sum())} NaN and {int(np.isinf(values).sum())} infinite values of "
                    f"{values.size}")
            if factor is not None and name == factor:
                raise ValueError(
                    f"Cannot prune '{graph.model.name}': the scaling factors of '{layer.name}' ({name}) are not "
                    f"finite ({what}, first at channel {int(np.flatnonzero(bad.reshape(-1))[0])}): the training "
                    "diverged. Train again with a lower learning rate or lam."
                )
            raise ValueError(
                f"Cannot prune '{graph.model.name}': layer '{layer.name}' has non-finite weights ({name}: {what}); "
                "the model computes NaN or Inf, and a pruned copy would not compute the same. Train again with "
                "a lower learning rate, or restore the weights from a checkpoint."
            )


def _emits_zero(layer, width):
    """Per channel: whether a zeroed scaling factor leaves exactly 0 (a mask; a BN whose beta is 0)."""
    if isinstance(layer, keras.layers.BatchNormalization) and layer.center:
        return keras.ops.convert_to_numpy(layer.beta) == 0
    return np.ones(width, bool)


def _split_start(g, node, key):
    """Where output `key` of a split node starts in its input's channels."""
    start = 0
    for k in node.outputs:
        if k == key:
            return start
        start += len(g.ids[k])
    raise KeyError(key)


def _width(shape):
    return 1 if len(shape) < 2 or shape[-1] is None else int(shape[-1])


def layer_flops(layer, n_in, n_out):
    """FLOPs (2 x multiply-accumulates, as `kslim.profile` counts) of one call of
    `layer` with `n_in` input and `n_out` output channels, at batch size 1."""
    handler = get_handler(layer)
    if type(handler).macs is LayerHandler.macs:
        return 0  # the layer costs nothing (merges, BN, activations, barriers)
    x = tuple(layer.input.shape[:-1]) + (n_in,)
    y = tuple(layer.output.shape[:-1]) + (n_out,)
    if handler.classify(layer, len(x))[0] == "per_channel":
        x = x[:-1] + (n_out,)  # a depthwise convolution reads as many channels as it writes
    if any(d is None for d in x[1:] + y[1:]):
        return 0
    return 2 * handler.macs(layer, x, y)
