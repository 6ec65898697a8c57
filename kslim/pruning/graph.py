"""Channel-dependency analysis of a functional Keras graph.

Every tensor's channel axis gets a list of channel ids. Producers make new
ids; per-channel layers pass them on; element-wise merges tie the ids of their
inputs (union-find); Concatenate concatenates the lists; Flatten repeats them
per position. A layer with a scaling factor (BN gamma, ChannelMask) gives its
output *child* ids. A child is merged with its parent when the parent channel
reaches that layer along a single path (conv -> BN): the scaling factor then
scores the producer's channel itself. Otherwise (the BN of a pre-activation
block on a shared residual stream or a dense concatenation) the child stays
separate, and pruning it inserts a channel selection before that layer while
the stream stays whole (Liu et al. 2017, section 4.3), except for a channel
that every such reader prunes and nothing reads otherwise: it goes at its
producer (`Analysis.streams`, `Analysis.close`).

A group of tied ids is prunable when something scores it, and when every
layer that reads one of its channels reads a constant once the group's scaling
factors are zero: that is what makes the pruned model compute what the masked
model computed (the constants are folded into the next layer's bias).
"""

import collections

import keras

from kslim._internal import keras_api
from kslim.pruning.handlers import get_handler
from kslim.pruning.handlers.base import has_handler


class _UnionFind:
    def __init__(self):
        self.parent = []

    def make(self, n=1):
        """Adds `n` singleton sets; returns their ids."""
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        return list(range(start, start + n))

    def find(self, i):
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


Node = collections.namedtuple("Node", "op role reason inputs outputs")
Node.__doc__ = "A call in the graph: its operation, role, and input/output tensor keys."


def classify(op, rank, n_calls):
    """`(role, reason)` of one call: its handler's answer, or a barrier kslim decides itself.

    A nested model and a shared layer are barriers whatever their handler
    says: kslim cannot rebuild them narrower. A keras.ops call is understood
    when a handler is registered for its class (kslim registers the
    element-wise ops, activations, concatenate and split).
    """
    if not isinstance(op, keras.layers.Layer):
        if not has_handler(op) or n_calls > 1:
            return "barrier", (
                f"operation '{op.name}' ({type(op).__name__}) is not one kslim understands; "
                "register a handler for its class with kslim.pruning.register_handler"
            )
        return get_handler(op).classify(op, rank)
    if isinstance(op, keras.Model):
        return "barrier", f"nested model '{op.name}' is kept whole"
    if n_calls > 1:
        return "barrier", f"layer '{op.name}' is shared by {n_calls} calls"
    return get_handler(op).classify(op, rank)


class Graph:
    """The channel graph of a model: nodes in topological order and channel ids.

    Attributes:
        nodes: list of `Node`, inputs first.
        ids: dict tensor key -> list of channel ids of its last axis (for a
            rank-2 tensor after Flatten, one id per feature).
        shapes: dict tensor key -> static shape.
        tensors: dict tensor key -> the symbolic tensor.
        consumers: dict tensor key -> list of node indices reading it.
        input_keys, output_keys: tensor keys of the model inputs and outputs.
    """

    def __init__(self, model):
        self.model = model
        fn = keras_api.functional_graph(model)
        self.uf = _UnionFind()
        self.kind = []  # per id: ("input"|"barrier", reason) | ("raw", node) | ("child", node, parent)
        self.ids, self.shapes, self.consumers = {}, {}, collections.defaultdict(list)
        self.tensors = {}
        self.nodes = []
        self.input_keys = [id(t) for t in fn.inputs]
        self.output_keys = [id(t) for t in fn.outputs]
        ordered = keras_api.ordered_nodes(fn)
        calls = collections.Counter(id(n.operation) for n in ordered)
        for node in ordered:
            self._visit(node, calls[id(node.operation)])
        self._merge_children()

    # --- phase 1: propagate ids ------------------------------------------------
    def _new_ids(self, n, kind):
        self.kind.extend([kind] * n)
        return self.uf.make(n)

    def _visit(self, node, n_calls):
        op = node.operation
        ins = [id(t) for t in node.input_tensors]
        outs = [id(t) for t in node.output_tensors]
        for t in list(node.input_tensors) + list(node.output_tensors):
            self.shapes[id(t)] = tuple(t.shape)
            self.tensors[id(t)] = t
        index = len(self.nodes)
        if isinstance(op, keras.layers.InputLayer) or not ins:
            for key, t in zip(outs, node.output_tensors):
                self.ids[key] = self._new_ids(_width(t.shape), ("input", f"model input '{op.name}'"))
            self.nodes.append(Node(op, "input", None, ins, outs))
            return
        kind, reason = classify(op, len(self.shapes[ins[0]]), n_calls)
        if kind in ("producer", "scale", "per_channel", "flatten", "reshape") and (
            len(ins) != 1 or len(outs) != 1
        ):
            kind, reason = "barrier", f"'{op.name}' has {len(ins)} inputs and {len(outs)} outputs"
        if kind == "reshape":
            kind, reason = self._reshape_role(op, ins[0], outs[0])
        for key in ins:
            self.consumers[key].append(index)
        in_ids = [self.ids[k] for k in ins]
        if kind == "producer":
            self.ids[outs[0]] = self._new_ids(_width(node.output_tensors[0].shape), ("raw", index))
        elif kind == "scale":
            self.kind.extend(("child", index, p) for p in in_ids[0])
            self.ids[outs[0]] = self.uf.make(len(in_ids[0]))
        elif kind == "per_channel" or kind == "reshape":
            self.ids[outs[0]] = list(in_ids[0])
        elif kind == "flatten":
            shape = self.shapes[ins[0]]
            if len(shape) <= 2:
                self.ids[outs[0]] = list(in_ids[0])
            elif any(d is None for d in shape[1:-1]):
                kind, reason = "barrier", f"'{op.name}' flattens unknown spatial dimensions {shape}"
            else:
                positions = 1
                for d in shape[1:-1]:
                    positions *= d
                self.ids[outs[0]] = list(in_ids[0]) * positions
        elif kind in ("merge", "multiply"):
            width = _width(node.output_tensors[0].shape)
            full = [ids for ids in in_ids if len(ids) == width]
            if not full or any(len(ids) not in (1, width) for ids in in_ids):
                kind, reason = "barrier", f"'{op.name}' merges inputs of different widths"
            else:
                for ids in full[1:]:
                    for a, b in zip(full[0], ids):
                        self.uf.union(a, b)
                self.ids[outs[0]] = list(full[0])
        elif kind == "concat":
            self.ids[outs[0]] = [i for ids in in_ids for i in ids]
        elif kind == "split":
            widths = [_width(t.shape) for t in node.output_tensors]
            if len(ins) != 1 or sum(widths) != len(in_ids[0]):
                kind, reason = "barrier", f"'{op.name}' splits {len(in_ids[0])} channels into {widths}"
            else:
                start = 0
                for key, w in zip(outs, widths):
                    self.ids[key] = list(in_ids[0][start:start + w])
                    start += w
        if kind == "barrier":
            for key, t in zip(outs, node.output_tensors):
                self.ids[key] = self._new_ids(_width(t.shape), ("barrier", reason))
        self.nodes.append(Node(op, kind, reason, ins, outs))

    def _reshape_role(self, op, key_in, key_out):
        shape_in, shape_out = self.shapes[key_in], self.shapes[key_out]
        if shape_in[-1] == shape_out[-1] and len(self.ids[key_in]) == shape_in[-1]:
            return "reshape", None
        if len(shape_out) == 2 and None not in shape_in[1:]:
            return "flatten", None
        return "barrier", f"'{op.name}' reshapes {shape_in} to {shape_out}, mixing channels"

    # --- phase 2: merge children that see their parent along a single path -----
    def _merge_children(self):
        carriers = collections.defaultdict(set)
        for key, ids in self.ids.items():
            for i in ids:
                carriers[self.uf.find(i)].add(key)
        outputs = set(self.output_keys)

        def exclusive(root):
            if any(self.kind[i][0] in ("input", "barrier") for i in self._members(root)):
                return False
            return all(
                len(self.consumers[k]) == 1 and k not in outputs for k in carriers[root]
            )

        decisions, known = [], {}  # roots do not change until the unions below
        for i, kind in enumerate(self.kind):
            if kind[0] != "child":
                continue
            root = self.uf.find(kind[2])
            if root not in known:
                known[root] = exclusive(root)
            if known[root]:
                decisions.append((i, kind[2]))
        self.merged = set()
        for child, parent in decisions:
            self.uf.union(child, parent)
            self.merged.add(child)

    def _members(self, root):
        if not hasattr(self, "_member_cache") or self._member_cache[0] != len(self.uf.parent):
            groups = collections.defaultdict(list)
            for i in range(len(self.uf.parent)):
                groups[self.uf.find(i)].append(i)
            self._member_cache = (len(self.uf.parent), groups)
        return self._member_cache[1][root]

    # --- queries ------------------------------------------------------------------
    def group(self, channel_id):
        """The root id of the group a channel id belongs to."""
        return self.uf.find(channel_id)

    def ancestors(self, channel_id):
        """Group roots whose pruning removes this channel: its own and its parents'."""
        out = []
        while True:
            root = self.uf.find(channel_id)
            if root not in out:
                out.append(root)
            kind = self.kind[channel_id]
            if kind[0] != "child":
                return out
            channel_id = kind[2]


def _width(shape):
    return 1 if len(shape) < 2 or shape[-1] is None else int(shape[-1])
