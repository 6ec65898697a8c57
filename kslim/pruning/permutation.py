"""An order of each shared stream's channels in which the readers' selections are few runs.

A *stream* here is the output channels of one producer, or of several tied by
element-wise merges (a residual stream), wherever they travel: through
per-channel layers, merges, concatenations (a dense block) and flattening.
Permuting a stream's channels the same way in every producer, every layer
along it and every reader's input leaves what the model computes unchanged, so
the pruned model stays exact. What it changes is the layout: a reader that
keeps part of the stream (the BN of a pre-activation block or of a dense
layer, Liu et al. 2017, section 4.3) has a `ChannelSelect` before it, and
LiteRT runs a selection of a few runs of consecutive channels as that many
static slices, one of many runs only as a full convolution over zero weights
(`kslim.deploy.lowering`).

The order: each channel's signature is which of the stream's selecting readers
keep it, the reader that saves the most FLOPs as the most significant bit;
channels are sorted by the signature's rank in the reflected Gray code. Then
the first two readers' selections are one run each, the third's at most two,
the k-th's at most 2^(k-2) (fewer where readers keep similar channels, as
trained ones often do).

A stream keeps its order where permuting it could change the model: when a
model output, an input or a barrier (a layer kslim does not rebuild, an
earlier `ChannelSelect`) carries its channels, or when a tensor carries only
part of it (a split across it).
"""

import math

_FREE = ("producer", "scale", "per_channel", "reshape", "flatten", "merge", "multiply", "concat", "split")


class Streams:
    """The permutable streams of a `Graph` (found once) and their orders for a pruning decision."""

    def __init__(self, graph):
        self.graph = g = graph
        self._base = {}
        self.size, self.ok, self._where = [], [], {}  # per stream; root -> (stream, index)
        for node in g.nodes:
            if node.role == "producer":
                self._add_producer([g.group(i) for i in g.ids[node.outputs[0]]])
        for root, (s, _) in self._where.items():
            if any(g.kind[m][0] in ("input", "barrier") for m in g._members(root)):
                self.ok[s] = False
        self.segments = {}  # tensor key -> [(start, stream)]
        outputs = set(g.output_keys)
        for key, ids in g.ids.items():
            segs = self._segments(ids)
            if not segs:
                continue
            self.segments[key] = segs
            if key in outputs or any(g.nodes[i].role not in _FREE for i in g.consumers[key]):
                for _, s in segs:
                    self.ok[s] = False
        self.readers = [
            (i, node.inputs[0], node.outputs[0]) for i, node in enumerate(g.nodes)
            if node.role == "scale" and node.inputs[0] in self.segments
        ]

    def _add_producer(self, roots):
        known = [self._where.get(r) for r in roots]
        if all(k is None for k in known) and len(set(roots)) == len(roots):
            s = len(self.size)
            self.size.append(len(roots))
            self.ok.append(True)
            for j, r in enumerate(roots):
                self._where[r] = (s, j)
            return
        first = known[0]
        if first is not None and self.size[first[0]] == len(roots) and known == [(first[0], j) for j in range(len(roots))]:
            return  # another producer of the same stream (a residual branch)
        s = len(self.size)  # anything else keeps its order
        self.size.append(len(roots))
        self.ok.append(False)
        for k in known:
            if k is not None:
                self.ok[k[0]] = False
        for j, r in enumerate(roots):
            self._where.setdefault(r, (s, j))

    def _stream_of(self, channel):
        if channel not in self._base:
            g, base = self.graph, channel
            while g.kind[base][0] == "child":
                base = g.kind[base][2]
            self._base[channel] = self._where.get(g.group(base))
        return self._base[channel]

    def _segments(self, ids):
        """`[(start, stream)]`: where a tensor carries a whole stream in its own order; a stream
        that a tensor carries only in part keeps its order."""
        where = [self._stream_of(c) for c in ids]
        segs, j = [], 0
        while j < len(where):
            if where[j] is None:
                j += 1
                continue
            s, n = where[j][0], self.size[where[j][0]]
            if where[j:j + n] == [(s, k) for k in range(n)]:
                segs.append((j, s))
                j += n
            else:
                self.ok[s] = False
                j += 1
        return segs

    def ranks(self, analysis, pruned):
        """dict tensor key -> the new position of each channel (full width), for the tensors
        that carry a stream whose order changes when `pruned` groups go."""
        g = self.graph
        votes = {}  # stream -> [(saving, node index, kept flags)]
        dead = analysis.dead_nodes(pruned)  # a reader left out of the model selects nothing
        for i, key_in, key_out in self.readers:
            if i in dead:
                continue
            anc_in, anc_out = analysis.key_ancestors(key_in), analysis.key_ancestors(key_out)
            area = math.prod(d for d in g.shapes[key_in][1:-1] if d) or 1
            for start, s in self.segments[key_in]:
                if not self.ok[s]:
                    continue
                span = range(start, start + self.size[s])
                alive = [anc_in[j].isdisjoint(pruned) for j in span]
                kept = [a and anc_out[j].isdisjoint(pruned) for a, j in zip(alive, span)]
                if kept != alive:
                    votes.setdefault(s, []).append((-area * (sum(alive) - sum(kept)), i, kept))
        orders = {}
        for s, readers in votes.items():
            readers.sort(key=lambda r: r[:2])
            keys = []
            for k in range(self.size[s]):
                code = 0
                for _, _, kept in readers:
                    code = (code << 1) | kept[k]
                keys.append((_gray_rank(code), k))
            order = [k for _, k in sorted(keys)]
            new = [0] * len(order)
            for position, k in enumerate(order):
                new[k] = position
            orders[s] = new
        ranks = {}
        for key, segs in self.segments.items():
            moved = [(start, s) for start, s in segs if s in orders]
            if moved:
                rank = list(range(len(g.ids[key])))
                for start, s in moved:
                    for k, p in enumerate(orders[s]):
                        rank[start + k] = start + p
                ranks[key] = rank
        return ranks


def _gray_rank(code):
    """The position of `code` in the reflected binary Gray code sequence."""
    rank = code
    code >>= 1
    while code:
        rank ^= code
        code >>= 1
    return rank
