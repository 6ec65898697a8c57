"""`kslim.plan`: which channels of which layers go, as data you can print, save and re-apply."""

import dataclasses
import json
import math
import warnings

import keras

from kslim.pruning.handlers import get_handler
from kslim.pruning import nesting
from kslim.pruning.analysis import Analysis
from kslim.pruning.budget import Budget, ratio_cut, selection_lowering
from kslim._internal.formatting import human as _human

_FORMAT = "kslim.plan/1"


class Plan:
    """The pruning decision for one model: per layer, the channels that stay.

    Made by `kslim.plan(model, ...)`; applied by `kslim.prune(model, plan=plan)`.

    Attributes:
        model_name: name of the model it was made for.
        layers: dict layer name -> record with keys `class`, `in` (kept input
            channel positions per input, in the pruned model's order, or None
            where all stay in order), `out` (kept output positions, likewise),
            `select` (positions a ChannelSelect
            keeps before the layer, or None), `zeroed` (for a layer with scaling
            factors: the positions whose factor is pruned, i.e. zero in the
            masked model), `channels`, `params`, `flops` ([before, after]),
            `why` (a short reason).
        budget: the arguments that made it (`ratio`, `threshold`, ...).
        threshold: the |scaling factor| below which channels were pruned.
        params, flops: [before, after] totals for the whole model.
        factors: [total, pruned] number of scaling factors (channels scored).
        kept_reasons: dict reason -> number of scaling factors kept for it.
    """

    def __init__(self, model_name, layers, budget, threshold, params, flops, factors, kept_reasons):
        self.model_name = model_name
        self.layers = layers
        self.budget = budget
        self.threshold = threshold
        self.params = list(params)
        self.flops = list(flops)
        self.factors = list(factors)
        self.kept_reasons = dict(kept_reasons)

    @property
    def pruned_fraction(self):
        """Fraction of the model's scaling factors (channels) that are pruned."""
        return self.factors[1] / self.factors[0] if self.factors[0] else 0.0

    def summary(self, print_fn=None):
        """Prints (or returns, with `print_fn=False`) a per-layer before -> after table."""
        rows = [("layer", "class", "channels", "params", "FLOPs", "why")]
        for name, rec in self.layers.items():
            rows.append((
                name,
                rec["class"],
                "{} -> {}".format(*rec["channels"]),
                _arrow(rec.get("params")),
                _arrow(rec.get("flops")),
                rec["why"],
            ))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(r[i].ljust(widths[i]) for i in range(5)) + "  " + r[5] for r in rows]
        lines.insert(1, "-" * min(140, sum(widths) + 40))
        pct = lambda a, b: f"{100.0 * (1 - b / a):.1f}% pruned" if a else "n/a"  # noqa: E731
        lines += [
            "",
            f"channels: {self.factors[0]} scored, {self.factors[1]} pruned "
            f"({100 * self.pruned_fraction:.1f}%), threshold |gamma| < {self.threshold:.4g}",
            f"params:   {_human(self.params[0])} -> {_human(self.params[1])} "
            f"({pct(*self.params)})",
            f"FLOPs:    {_human(self.flops[0])} -> {_human(self.flops[1])} ({pct(*self.flops)})",
        ]
        for reason, count in sorted(self.kept_reasons.items(), key=lambda kv: -kv[1])[:5]:
            lines.append(f"kept {count} channels: {reason}")
        text = "\n".join(lines)
        if print_fn is False:
            return text
        (print_fn or print)(text)
        return None

    def to_json(self):
        """The plan as a JSON string (`Plan.from_json` reads it back)."""
        return json.dumps(
            {
                "format": _FORMAT,
                "model_name": self.model_name,
                "budget": self.budget,
                "threshold": self.threshold,
                "params": self.params,
                "flops": self.flops,
                "factors": self.factors,
                "kept_reasons": self.kept_reasons,
                "layers": self.layers,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text):
        """Reads a plan written by `to_json`.

        Raises:
            ValueError: if the text is not a kslim plan.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Not a kslim plan: the text is not JSON ({e}).") from None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise ValueError(
                f"Not a kslim plan: expected a JSON object with format '{_FORMAT}', "
                "as written by Plan.to_json()."
            )
        missing = [k for k in ("model_name", "layers", "budget", "threshold", "params", "flops",
                               "factors") if k not in data]
        if missing:
            raise ValueError(f"Not a complete kslim plan: it has no {', '.join(map(repr, missing))}.")
        if not isinstance(data["layers"], dict):
            raise ValueError("Not a kslim plan: 'layers' must map layer names to records.")
        return cls(
            data["model_name"],
            data["layers"],
            data["budget"],
            data["threshold"],
            data["params"],
            data["flops"],
            data["factors"],
            data.get("kept_reasons", {}),
        )

    def __repr__(self):
        return (
            f"<Plan for '{self.model_name}': {self.factors[1]}/{self.factors[0]} channels pruned, "
            f"params {_human(self.params[0])} -> {_human(self.params[1])}, "
            f"FLOPs {_human(self.flops[0])} -> {_human(self.flops[1])}>"
        )


def _arrow(pair):
    if not pair or pair == [0, 0]:
        return "-"
    return f"{_human(pair[0])} -> {_human(pair[1])}"


def plan(
    model,
    ratio=None,
    threshold=None,
    flops_target=None,
    params_target=None,
    min_channels=1,
    round_to=None,
    max_layer_ratio=None,
    exclude=(),
    budget=None,
    latency_target=None,
    latency_threads=1,
    selections=None,
    quantize=None,
    round_inputs_to=None,
    runtime=None,
):
    """Decides which channels to prune, without touching the model.

    Channels are scored by their |scaling factor| (BN gamma right after a
    producer, or a `ChannelMask`); channels tied by an element-wise merge are
    scored together by their largest factor and pruned together. A channel of
    a shared stream (a residual sum, a dense concatenation) that every reader
    prunes through its own BN is not computed at all: the stream no longer
    carries it and its producers lose it. Give exactly
    one budget: `ratio` (the paper's global percentile), `threshold`,
    `flops_target`, `params_target` or `latency_target`; or a `kslim.Budget`
    as `budget`.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, section 3.

    Args:
        model: a built functional or Sequential Keras model.
        ratio: float in [0, 1), the fraction of all prunable scaling factors to
            prune: the smallest ones, pooled over all layers (one global
            percentile, `kslim.pruning.ratio_cut`; ties, such as exact zeros,
            are broken in a fixed order).
        threshold: float, prune channels whose |factor| is below it.
        flops_target: float, the FLOPs to keep: a fraction of the model's
            FLOPs if <= 1, else an absolute count. The ratio is found by
            bisection.
        params_target: float, like `flops_target` for parameters.
        min_channels: int >= 1, the fewest channels any layer keeps.
        round_to: int >= 1, round each pruned layer's output width up to a
            multiple (layers no wider than it are not rounded, except in a
            plan for LiteRT, where they keep all their channels; nor the part
            of a shared stream a reader selects: a convolution's time follows
            its output channels in tiles, its input channels one by one in
            float32; see `round_inputs_to` where they too come in tiles). Default
            1; with `runtime="litert"` or `latency_target`, the multiple
            XNNPACK's convolutions run in on this CPU
            (`kslim.deploy.channel_tile`, measured once and cached), whose
            channels cost no time.
        max_layer_ratio: float in (0, 1], the largest fraction of any one
            layer's channels pruned in this pass (0.5 in the paper's
            multi-pass scheme), or None.
        exclude: layer names whose output channels are all kept.
        budget: a `kslim.Budget` holding all of the above, instead of them.
        latency_target: float in (0, 1], the fraction of the model's measured
            LiteRT latency (XNNPACK, float32, batch 1) to keep. Each candidate
            is pruned, exported as `kslim.export` writes it and timed against
            the unpruned model in this process; the ratio is found by
            bisection (about 8 measurements, cached: see
            `kslim.deploy.latency`). Needs `ai-edge-litert` and TensorFlow.
        latency_threads: int, interpreter threads for `latency_target`.
        selections: "all" or "sliceable" (the default with `runtime="litert"`
            and `latency_target`): see `kslim.Budget`.
        quantize: the `kslim.export` quantization the plan is for (None,
            "float16", "dynamic", "int8"): with `selections="sliceable"`, "int8"
            judges selections by the int8 cost model. See `kslim.Budget`.
        round_inputs_to: int >= 1, the multiple a convolution's input
            channels cost in: rounds every pruned layer's width (narrow ones
            too) and, with `selections="sliceable"`, counts a selection's
            saving in whole tiles and fills its last tile. Default 1; with `runtime="litert"` or
            `latency_target`, the input tile measured on this CPU
            (`kslim.deploy.channel_tile(inputs=True)`). See `kslim.Budget`.
        runtime: None (default), a plan for FLOPs; "litert", a plan for
            LiteRT with XNNPACK on this CPU: `selections="sliceable"` and the
            measured channel tiles (for `quantize`) as `round_to` and
            `round_inputs_to` by default, and layers no wider than `round_to`
            kept whole (1 to 16 outputs of a convolution take the same time)
            or, for a layer that only writes into concatenations (a DenseNet
            growth layer), removed whole with the layers that only feed it,
            so that FLOPs fall only where time does
            (`kslim.prune(model, ratio=0.4, runtime="litert")`). See
            `kslim.Budget`.

    Returns:
        A `kslim.Plan`.

    Raises:
        ValueError: for a bad budget, a model kslim cannot analyse, or a model
            with no scaling factors.

    Example:

    >>> p = kslim.plan(model, ratio=0.5)
    >>> p.summary()
    >>> slim = kslim.prune(model, plan=p)
    """
    budget = make_budget(budget, ratio, threshold, flops_target, params_target, min_channels,
                         round_to, max_layer_ratio, exclude, latency_target, latency_threads, selections,
                         quantize, round_inputs_to, runtime)
    return decide(Analysis(nesting.flatten(model), exclude=budget.exclude), budget)[0]


def make_budget(budget, ratio, threshold, flops_target, params_target, min_channels, round_to,
                max_layer_ratio, exclude, latency_target=None, latency_threads=1, selections=None,
                quantize=None, round_inputs_to=None, runtime=None):
    """The `Budget` of `plan`'s / `prune`'s arguments (checked), or the one given."""
    if budget is None:
        return Budget(ratio, threshold, flops_target, params_target, min_channels, round_to,
                      max_layer_ratio, exclude, latency_target, latency_threads, selections, quantize,
                      round_inputs_to, runtime)
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a kslim.Budget, got {type(budget).__name__}.")
    given = dict(ratio=ratio, threshold=threshold, flops_target=flops_target,
                 params_target=params_target, max_layer_ratio=max_layer_ratio,
                 latency_target=latency_target, selections=selections, quantize=quantize, runtime=runtime)
    extra = [k for k, v in given.items() if v is not None]
    extra += [k for k, v, d in (("min_channels", min_channels, 1), ("round_to", round_to, None),
                                ("round_inputs_to", round_inputs_to, None),
                                ("latency_threads", latency_threads, 1),
                                ("exclude", tuple(exclude or ()), ())) if v != d]
    if extra:
        raise ValueError(f"Give budget= or the budget's arguments, not both; got budget and {extra}.")
    return budget


def decide(analysis, budget):
    """`(Plan, pruned group roots)` for an `Analysis` and a `Budget`."""
    model = analysis.graph.model
    scores = analysis.prunable()
    if not analysis.score:
        from kslim.sparsity.factors import how_to_add_factors  # sparsity imports pruning

        barriers = [n.reason for n in analysis.graph.nodes
                    if isinstance(n.op, keras.layers.BatchNormalization) and n.role == "barrier"]
        raise ValueError(f"Model '{model.name}' has no channel scaling factors to score: "
                         f"{how_to_add_factors(model, barriers)}.")
    if budget.round_to is None or budget.round_inputs_to is None:  # runtime="litert": the tiles measured here
        from kslim.deploy.latency import channel_tile  # deploy imports pruning

        threads, quantize = budget.latency_threads, budget.quantize
        budget = dataclasses.replace(
            budget, round_to=budget.round_to or channel_tile(threads, quantize),
            round_inputs_to=budget.round_inputs_to or channel_tile(threads, quantize, inputs=True))
    kind, value, floors = budget.kind, budget.value, budget.floors
    streams = _stream_readers(analysis) if budget.selections == "sliceable" else None
    ranked = Ranked(analysis, scores, budget.round_to if budget.runtime == "litert" else None)
    if kind == "ratio":
        pruned, t = ranked.cut(value)
    elif kind == "threshold":
        t = float(value)
        pruned = ranked.below(t)
    elif kind == "latency_target":
        pruned, t = _latency_search(analysis, ranked, budget, streams)
    else:
        pruned, t = _search(analysis, ranked, budget, streams)
    closed = analysis.close(pruned)  # with the stream channels that every reader prunes
    floored = analysis.bury(analysis.apply_floors(closed, **floors))  # a layer that loses every channel goes
    pruned = keep_unsliceable(analysis, floored, streams, budget.quantize, budget.round_inputs_to) if streams else floored
    result = make_plan(model, analysis, pruned, {kind: value}, t, restored=closed - floored, floors=floors,
                       unsliced=floored - pruned)
    _warn_degenerate(result, floors["min_channels"])
    if kind != "threshold":  # a threshold says itself which factors count as zero
        _warn_unseparated(analysis, result)
    return result, pruned


def _settle(analysis, chosen, budget, streams):
    """The groups pruned for the `chosen` ones: after the budget's per-layer floors and, with
    `selections="sliceable"` (`streams` from `_stream_readers`), without the readers whose selections
    would not be sliced."""
    pruned = analysis.bury(analysis.apply_floors(analysis.close(chosen), **budget.floors))
    return keep_unsliceable(analysis, pruned, streams, budget.quantize, budget.round_inputs_to) if streams else pruned


class Ranked:
    """The order a budget prunes in: groups by score (`ratio_cut`), and in a plan for LiteRT
    (`runtime="litert"`) each narrow layer that can go whole as one unit.

    A convolution no wider than `round_to` takes as long for one output channel as for all (a
    plan for LiteRT keeps it whole, `Analysis.apply_floors(round_narrow=True)`), so pruning some of
    its channels saves nothing; removing it whole saves its time and its part of every later
    layer's input. A removable producer (`Analysis.removable`, a DenseNet growth layer) whose
    channels are read only through their readers' scaling factors (`Analysis.streams`) is
    therefore ranked as one unit: every reader's factor of every channel it computes, scored by
    their mean |factor| and counting as many factors as it holds. Pruning the unit prunes them all;
    the channels then close (`Analysis.close`) and the layer goes with the layers that only feed it
    (`Analysis.bury`), exact against the masked model.

    Args:
        analysis: the `Analysis`.
        scores: dict group root -> score of the groups that may be pruned (`Analysis.prunable`).
        layers_up_to: None (a plan for FLOPs: no units), or the widest layer ranked as a unit
            (a plan for LiteRT: its `round_to`).

    Attributes:
        units: dict unit key (-1 - the producer's node index) -> the group roots it prunes.
        scores, sizes: dict key -> score and number of factors, of the groups no unit holds and of the units.
    """

    def __init__(self, analysis, scores, layers_up_to=None):
        g = analysis.graph
        self.units = {}
        if layers_up_to is not None:
            for i in sorted(analysis.removable):
                roots = [g.group(c) for c in g.ids[g.nodes[i].outputs[0]]]
                if len(roots) > layers_up_to or not all(r in analysis.streams for r in roots):
                    continue
                members = frozenset().union(*(analysis.streams[r] for r in roots))
                if members and all(m in scores for m in members):
                    self.units[-1 - i] = members  # negative keys: never a group root
        covered = set().union(*self.units.values()) if self.units else set()
        self.scores = {r: s for r, s in scores.items() if r not in covered}
        self.sizes = {r: analysis.size[r] for r in self.scores}
        for key, members in self.units.items():
            self.scores[key] = sum(scores[m] for m in members) / len(members)
            self.sizes[key] = sum(analysis.size[m] for m in members)

    def _groups(self, keys):
        return set().union(*(self.units.get(k, {k}) for k in keys)) if keys else set()

    def cut(self, ratio):
        """`(pruned group roots, threshold)`: `ratio_cut` over the groups and units."""
        keys, t = ratio_cut(self.scores, self.sizes, ratio)
        return self._groups(keys), t

    def below(self, threshold):
        """The group roots of every group and unit scored below `threshold`."""
        return self._groups([k for k, s in self.scores.items() if s < threshold])


def keep_unsliceable(analysis, pruned, streams, quantize=None, input_tile=1):
    """`pruned` without the groups of every stream reader whose selection does not pay on LiteRT
    (`selections="sliceable"`): neither as slices of its runs of consecutive channels (at most
    `SLICE_RUNS`) nor as one slice over its span saves more time than the slices, and the
    `BorderBias` its dropped constant channels give a zero-padded reader, cost
    (`budget.selection_lowering`, in a file exported with `quantize`; the border as `kslim.prune`'s
    default exact compensation adds it; the readers' input channels in tiles of `input_tile`). `streams` is
    `_stream_readers(analysis)`, computed once per plan.

    LiteRT runs such a selection as a convolution over the whole stream (`kslim.export` folds it into
    zero weights), so keeping those channels costs no time and keeps what they carry. Likewise a
    selection best read as one slice over its span keeps the dropped channels inside the span, which
    that slice reads anyway: the reader then selects one run, and the plan's FLOPs are the file's.
    And with `input_tile` > 1 a reader that keeps its selection takes back channels to fill its last
    input tile (`_tile_fill`), read at no cost: its FLOPs fall only by the tiles it drops.
    """
    g = analysis.graph
    pruned = set(pruned)
    readers, constant = streams
    while True:
        widths = analysis.layer_widths(pruned)
        costs = analysis.layer_costs(pruned)
        dead = analysis.dead_nodes(pruned)
        restore = set()
        for i, node in enumerate(g.nodes):
            if node.role != "scale" or i not in widths or i in dead:  # a layer left out reads nothing
                continue
            ins, out = widths[i]
            if list(out) == list(ins[0]):
                continue
            rank = {j: r for r, j in enumerate(ins[0])}
            dropped = sorted(set(ins[0]) - set(out))
            macs = sum(costs[j][1] / 2 / len(widths[j][0][0]) for j in readers[i] if j in costs and widths[j][0][0])
            border = sum(math.prod(d for d in g.shapes[g.nodes[j].outputs[0]][1:-1] if d) * len(widths[j][1])
                         for j in readers[i] if j in constant and constant[j][dropped].any())
            how, _ = selection_lowering([rank[j] for j in out], len(ins[0]), macs,
                                        math.prod(d for d in g.shapes[node.inputs[0]][1:-1] if d), quantize, border,
                                        input_tile or 1)
            ids = g.ids[node.outputs[0]]
            if how == "whole":  # the channels it reads; one the stream no longer carries stays pruned
                restore |= {g.group(ids[j]) for j in ins[0]} & pruned
                continue
            kept = sorted(rank[j] for j in out)
            if how == "span":  # the file reads every channel of the span: keep them, and count their FLOPs
                kept = list(range(kept[0], kept[-1] + 1))
            kept += _tile_fill(kept, len(ins[0]), input_tile or 1)  # the rest of its last input tile
            restore |= {g.group(ids[ins[0][r]]) for r in kept} & pruned  # ins[0][r]: the channel at rank r
        if not restore:
            return pruned
        pruned -= restore


def _tile_fill(kept, full, tile):
    """The stream positions a reader keeping `kept` (sorted positions of a stream of `full`) takes
    back so that it reads a whole number of input tiles: a convolution's input channels cost whole
    tiles on LiteRT (`kslim.deploy.channel_tile(inputs=True)`), so the rest of the last tile is read
    at no cost. The gaps between its runs are filled first, smallest first, each from its left so
    that no run is split, then the stream beyond its last and before its first kept position:
    the selection never gains a slice."""
    need = min(-(-len(kept) // tile) * tile, full) - len(kept)
    if need <= 0:
        return []
    gaps = sorted((b - a - 1, a + 1, b) for a, b in zip(kept, kept[1:]) if b - a > 1)
    order = [r for _, lo, hi in gaps for r in range(lo, hi)]
    order += list(range(kept[-1] + 1, full)) + list(range(kept[0] - 1, -1, -1))
    return order[:need]


def _stream_readers(analysis):
    """`(readers, constant)`: per scale node, the producers that read its output through per-channel
    layers (the reader's convolution after its BN and activation); per such producer that a dropped
    constant input gives a `BorderBias` (`surgery._border_geometry`), which of its input channels
    are nonzero constants when pruned. One forward pass with every prunable factor masked: a channel
    whose own factor is masked is a constant that no other pruning changes (BN gives its beta)."""
    from kslim.pruning import compensation, surgery  # surgery imports the planner's neighbours

    g = analysis.graph
    readers = {}
    for i, node in enumerate(g.nodes):
        if node.role != "scale":
            continue
        found, keys, seen = [], list(node.outputs), set()
        while keys:
            for j in g.consumers[keys.pop()]:
                if j in seen:
                    continue
                seen.add(j)
                if g.nodes[j].role == "producer":
                    found.append(j)
                elif g.nodes[j].role == "per_channel":
                    keys.extend(g.nodes[j].outputs)
        readers[i] = found
    bordered = sorted({j for found in readers.values() for j in found
                       if surgery._border_geometry(g.nodes[j].op) is not None})
    if not bordered:
        return readers, {}
    values = compensation.constants(analysis, set(analysis.prunable()), [g.nodes[j].inputs[0] for j in bordered])
    return readers, {j: values[g.nodes[j].inputs[0]] != 0 for j in bordered}


def _latency_search(analysis, ranked, budget, streams):
    """Bisects the ratio whose pruned model has the largest measured latency not above the target."""
    from kslim.deploy.latency import LatencyMeter  # deploy imports pruning
    from kslim.pruning import surgery

    model = analysis.graph.model
    meter = LatencyMeter(model, threads=budget.latency_threads)
    target = budget.latency_target

    def cost(ratio):
        chosen, t = ranked.cut(ratio)
        pruned = _settle(analysis, chosen, budget, streams)
        candidate = make_plan(model, analysis, pruned, {"ratio": ratio}, t)
        return meter.fraction(candidate, lambda: surgery.rebuild(model, analysis, candidate, pruned)), (chosen, t)

    if target >= 1:
        return set(), 0.0
    return _bisect(cost, target, 7, lambda least: (
        f"latency_target={target} cannot be reached: pruning every prunable channel (down to the "
        f"floors) keeps {least:.2f} of the measured latency on LiteRT "
        f"({budget.latency_threads} thread(s)). Raise the target, lower min_channels, or use "
        "selections='all'."
    ))


def _bisect(cost, goal, steps, unreachable):
    """The decision of the smallest ratio in [0, 1) whose `cost(ratio)` (a `(cost, decision)` pair,
    assumed to fall as the ratio grows) is at most `goal`, to `steps` halvings."""
    lo, hi = 0.0, 1.0 - 1e-9
    least, best = cost(hi)
    if least > goal:
        raise ValueError(unreachable(least))
    for _ in range(steps):
        mid = (lo + hi) / 2
        c, decision = cost(mid)
        if c <= goal:
            hi, best = mid, decision
        else:
            lo = mid
    return best


def _warn_degenerate(plan, min_channels):
    """Warns about layers cut down to their floor: such a network rarely recovers in fine-tuning."""
    floored = [
        f"'{name}' {rec['channels'][0]} -> {rec['channels'][1]}"
        for name, rec in plan.layers.items()
        if 0 < rec["channels"][1] <= min_channels < rec["channels"][0] // 4  # 0: removed whole
        and rec["out"] is not None and rec["zeroed"] is None  # the producers, not their BNs
    ]
    if floored:
        warnings.warn(
            f"The plan cuts {len(floored)} layer(s) down to min_channels={min_channels}: "
            f"{', '.join(floored[:5])}{' ...' if len(floored) > 5 else ''}. Such layers rarely "
            "recover in fine-tuning: lower the ratio, raise min_channels, or set max_layer_ratio.",
            stacklevel=3,
        )


SEPARATED = 0.01  # a factor below this share of the largest counts as pruned by the training


def _warn_unseparated(analysis, plan):
    """Warns when a budget prunes factors that the sparsity training has not sent toward zero: in a
    sparsity-trained model the factors split into a group near zero and the rest (Liu et al., Fig. 4);
    without that split (an untrained model, too few epochs, too small a lam) the plan cuts channels that
    still carry signal, by rank alone."""
    top = max(analysis.score.values(), default=0.0)
    pruned = plan.factors[1]
    near = sum(analysis.size[r] for r, score in analysis.score.items() if score < SEPARATED * top)
    if pruned and near < pruned / 2:
        warnings.warn(
            f"The scaling factors have not separated: {near} of {plan.factors[0]} are below "
            f"{SEPARATED:.0%} of the largest ({top:.3g}), but the plan prunes {pruned} "
            f"(|factor| < {plan.threshold:.4g}), so it cuts channels that still carry signal. Train longer "
            "with the sparsity penalty, or with a larger lam, before pruning.",
            stacklevel=3,
        )


def _search(analysis, ranked, budget, streams):
    """Bisects the ratio whose plan has the largest cost (FLOPs or parameters) not above the budget's target."""
    kind, target = budget.kind, budget.value
    which = 1 if kind == "flops_target" else 0
    full = analysis.cost(set())[which]
    goal = target * full if target <= 1 else target

    def cost(ratio):
        pruned, t = ranked.cut(ratio)
        return analysis.cost(_settle(analysis, pruned, budget, streams))[which], (pruned, t)

    if full <= goal:
        return set(), 0.0
    return _bisect(cost, goal, 40, lambda least: (
        f"{kind}={target} cannot be reached: pruning every prunable channel (down to the "
        f"floors) leaves {least:.4g} of {full:.4g}. Lower min_channels, round_to or round_inputs_to, "
        "or prune unprunable parts by hand."
    ))


def make_plan(model, analysis, pruned, budgets, threshold, restored=(), floors=None, unsliced=()):
    g = analysis.graph
    restored = set(restored)
    widths = analysis.layer_widths(pruned)
    before, after = analysis.cost(set()), analysis.cost(pruned)
    costs_before, costs_after = analysis.layer_costs(set()), analysis.layer_costs(pruned)
    dead = analysis.dead_nodes(pruned)
    layers = {}
    for i, node in enumerate(g.nodes):
        if i not in widths:
            continue
        ins, out = widths[i]
        full_ins = [len(g.ids[k]) for k in node.inputs]
        full_out = len(g.ids[node.outputs[0]])
        in_changed = [a != list(range(f)) for a, f in zip(ins, full_ins)]  # fewer or reordered
        out_changed = out != list(range(full_out))
        if not any(in_changed) and not out_changed and node.role != "producer":
            continue
        if node.role == "per_channel" and not getattr(node.op, "weights", ()) and not get_handler(node.op).edits_config(node.op):
            continue
        select = None
        if node.role == "scale" and out != ins[0]:
            rank = {j: r for r, j in enumerate(ins[0])}
            select = [rank[j] for j in out]
        if len(out) < full_out:
            why = f"|gamma| < {threshold:.3g}" if node.role in ("producer", "scale") else "follows its input"
            if select is not None:
                why = "channel selection on a shared stream: " + why
            elif node.role == "producer" and any(g.group(c) in pruned and g.group(c) in analysis.streams
                                                 for c in g.ids[node.outputs[0]]):
                why = "stream channels that every reader prunes: " + why
        elif any(in_changed):
            why = "input channels follow the layers before it"
        else:
            why = _kept_reason(analysis, node)
        if out_changed and len(out) == full_out:
            why += "; channels reordered with their stream"
        if i in dead:
            why = ("removed: every reader prunes every channel it adds to the concatenation" if i in analysis.removable
                   else "removed: it only feeds layers that are removed")
        if restored and node.role in ("producer", "scale"):
            held = sum(1 for a in analysis.key_ancestors(node.outputs[0]) if a & restored)
            if held:
                why += f"; {held} more below it kept by {_floor_reason(len(out), full_out, floors)}"
        zeroed = None
        if node.role == "scale":
            ids = g.ids[node.outputs[0]]
            zeroed = [j for j, c in enumerate(ids) if g.group(c) in pruned] or None
        layers[node.op.name] = {
            "class": type(node.op).__name__,
            "in": [a if c else None for a, c in zip(ins, in_changed)],
            "out": out if out_changed else None,
            "select": select,
            "zeroed": zeroed,
            "channels": [full_out, len(out)],
            "params": [costs_before[i][0], costs_after[i][0]],
            "flops": [costs_before[i][1], costs_after[i][1]],
            "why": why,
        }
    total = sum(analysis.size.values())
    cut = sum(analysis.size.get(r, 0) for r in pruned)  # a stream channel (Analysis.streams) has no factor
    kept_reasons = {}
    for root, reason in analysis.blocked.items():
        kept_reasons[reason] = kept_reasons.get(reason, 0) + analysis.size[root]
    unscored = {}  # scaling factors in a layer the analysis keeps whole (a shared BN): kept, and why
    for node in g.nodes:
        if node.role == "barrier" and isinstance(node.op, keras.layers.Layer) and node.outputs \
                and get_handler(node.op).scaling_factor(node.op):
            unscored[id(node.op)] = (f"not scored: {node.reason}", len(g.ids[node.outputs[0]]))
    for reason, count in unscored.values():
        kept_reasons[reason] = kept_reasons.get(reason, 0) + count
    if any(analysis.size.get(r) for r in restored):  # a stream channel alone holds no factor to count
        active = [f"{k}={v}" for k, v in (floors or {}).items()
                  if k not in ("round_narrow", "remove_layers") and v not in (None, 1)]
        reason = "below the threshold, kept by the per-layer floors" + (
            f" ({', '.join(active)})" if active else " (min_channels=1)")
        kept_reasons[reason] = sum(analysis.size.get(r, 0) for r in restored)
    if unsliced:
        reason = ("below the threshold, kept by selections='sliceable': a stream selection that does not pay "
                  "on LiteRT (run over the whole stream anyway: its slices, or one slice over its span, "
                  "would cost more than the narrower reader saves)")
        if "ratio" in budgets or "threshold" in budgets:
            reason += ("; to remove more FLOPs where removing them pays, give the budget in FLOPs "
                       "(flops_target=..., runtime='litert')")
        kept_reasons[reason] = sum(analysis.size.get(r, 0) for r in unsliced)
    return Plan(
        model.name,
        layers,
        budgets,
        float(threshold),
        [before[0], after[0]],
        [before[1], after[1]],
        [total, cut],
        kept_reasons,
    )


def _floor_reason(width, full, floors):
    """Which per-layer floor holds a layer at `width` of its `full` channels."""
    floors = floors or {}
    cap = floors.get("max_layer_ratio")
    if cap is not None and width == min(full, math.ceil(round((1.0 - cap) * full, 9))):
        return f"max_layer_ratio={cap}"
    least = floors.get("min_channels", 1)
    round_to = floors.get("round_to", 1)
    narrow = floors.get("round_narrow") and width == full <= round_to  # a narrow layer kept whole
    if round_to > 1 and (width % round_to == 0 or narrow) and width > least:
        return f"round_to={round_to}"
    tile = floors.get("round_inputs_to", 1)
    if tile > 1 and (width % tile == 0 or width == full) and width > least:  # a narrow layer is kept whole
        return f"round_inputs_to={tile}"
    return f"min_channels={least}"


def _kept_reason(analysis, node):
    g = analysis.graph
    for c in g.ids[node.outputs[0]]:
        root = g.group(c)
        if root in analysis.blocked:
            return "kept: " + analysis.blocked[root]
    if any(g.group(c) in analysis.streams for c in g.ids[node.outputs[0]]):
        return "kept: its channels go on in a shared stream, and one goes only where every reader prunes it"
    if not any(g.group(c) in analysis.score for c in g.ids[node.outputs[0]]):
        return "kept: no scaling factor scores it"
    return "kept: all channels above the threshold"
