"""`Budget`: how much to prune and the limits on every layer, checked once.

One object carries the budget from the command line (`kslim-prune --ratio`)
or the keyword arguments of `kslim.plan` / `kslim.prune` to the planner.
"""

import dataclasses

from kslim._internal.checks import check_int, check_number

BUDGET_KINDS = ("ratio", "threshold", "flops_target", "params_target", "latency_target")
SELECTIONS = ("all", "sliceable")
# What a plan is for: None, FLOPs (the paper's plan); "litert", LiteRT with XNNPACK on this CPU.
RUNTIMES = (None, "litert")
# A channel selection of at most this many runs of consecutive channels is exported as that many
# static slices; one of more is folded into zero weights (measured on LiteRT: slices for every selection
# of a pre-activation ResNet-164 made it slower than zero weights for the long ones).
SLICE_RUNS = 4
# What slicing a stream selection saves on LiteRT (XNNPACK), in microseconds, at 1 and 2 interpreter
# threads, as fitted by benchmarks/selection_cost.py [--threads 2] on this project's 2-core CPU machine
# (Intel Xeon with AVX-512 and AMX, 2026-12-05): the narrower reader saves time per
# multiply-accumulate, each slice costs a fixed time and a time per value it copies, and a
# `BorderBias` (dropped channels that are nonzero constants, read by a zero-padded reader) a time per
# value of its image. A selection counts as paying only where it pays at every thread count here
# (`slice_saving` takes the least): at 2 threads each slice costs 2 to 2.7x more (the second thread
# is woken for every operator) and a multiply-accumulate saved is worth less, so a plan made for one
# thread that slices freely runs slower than the unpruned model at two (the trained DenseNet-16 of
# the deploy benchmark did). float32: results/selection_cost.json and selection_cost_2threads.json;
# int8 (`quantize="int8"` in the plan and the export): results/selection_cost_int8.json and
# selection_cost_int8_2threads.json, timed on a stream made in the graph, whose slices read a
# requantized copy of it; a multiply-accumulate saved is worth several times less in int8.
SLICE_COST = {
    "float32": {
        1: {"per_mac": 2.173e-05, "per_run": 2.619, "per_element": 0.0002249, "per_border_element": 6.086e-05},
        2: {"per_mac": 1.279e-05, "per_run": 7.097, "per_element": 0.0001998, "per_border_element": 0.0002152},
    },
    "int8": {
        1: {"per_mac": 6.8e-06, "per_run": 2.977, "per_element": 0.0001057, "per_border_element": 0.0002075},
        2: {"per_mac": 3.194e-06, "per_run": 6.065, "per_element": 8.22e-05, "per_border_element": 0.0002865},
    },
}
# kslim.export's quantize modes. Plans for float16 and dynamic-range files use the float32 cost model:
# their activations are float32.
QUANTIZE_MODES = (None, "float16", "dynamic", "int8")


def slice_saving(macs_saved, runs, elements, quantize=None, border_elements=0, threads=None):
    """Predicted microseconds that slicing a selection saves over reading the whole stream:
    `macs_saved` by the narrower reader, in `runs` slices copying `elements` values, less the
    `BorderBias` image of `border_elements` values that the dropped constant channels add, in a
    file exported with `quantize` (`SLICE_COST["int8"]` for "int8", else float32's), run with
    `threads` interpreter threads; None (default): the least saving over the thread counts fitted."""
    fits = SLICE_COST["int8" if quantize == "int8" else "float32"]
    if threads is not None and threads not in fits:
        raise ValueError(f"threads={threads!r}: the slice cost model is fitted at {sorted(fits)} threads "
                         "(benchmarks/selection_cost.py --threads N fits another); pass one of them or None.")
    return min(c["per_mac"] * macs_saved - c["per_run"] * runs - c["per_element"] * elements
               - c["per_border_element"] * border_elements
               for t, c in fits.items() if threads in (None, t))


def selection_lowering(positions, full, macs_per_channel, pixels, quantize=None, border_elements=0, input_tile=1):
    """How LiteRT best runs a stream reader that keeps `positions` of the stream's `full` channels,
    and the microseconds that saves over the reader convolving the whole stream (`slice_saving`).

    Returns `(how, saving)`, `how` one of: `"slices"`, a static slice per run of consecutive
    channels (at most `SLICE_RUNS`) and their concatenation; `"span"`, one slice from the first kept
    channel to the last, the dropped channels inside it read over zero weights (fewer ops and
    copies for a few more multiply-accumulates); `"whole"`, zero weights for every dropped channel
    (saves 0: what a selection that pays neither way becomes). `macs_per_channel` is what the reader
    computes per input channel, `pixels` the stream's positions, `border_elements` the `BorderBias`
    image the dropped constant channels add. With `input_tile` > 1 the reader's input channels cost in
    whole tiles (`kslim.deploy.channel_tile(inputs=True)`): it saves the tiles it no longer reads."""
    from kslim.layers.channel_select import runs  # layers import the pruning package

    def tiled(channels):
        return -(-channels // input_tile) * input_tile

    kept, k = len(positions), len(runs(positions))
    width = max(positions) - min(positions) + 1
    options = {"whole": 0.0}
    if k <= SLICE_RUNS:
        options["slices"] = slice_saving(macs_per_channel * (tiled(full) - tiled(kept)), k, pixels * kept,
                                         quantize, border_elements)
    if k > 1 and width < full:
        options["span"] = slice_saving(macs_per_channel * (tiled(full) - tiled(width)), 1, pixels * width,
                                       quantize, border_elements)
    how = max(options, key=options.get)
    return how, options[how]


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much to prune (exactly one of ratio, threshold and the targets) and per-layer limits.

    Attributes:
        ratio: float in [0, 1), the fraction of all prunable scaling factors
            to prune: the smallest ones, pooled over all layers (Liu et al.'s
            global percentile; see `ratio_cut`).
        threshold: float >= 0, prune channels whose |factor| is below it.
        flops_target: float > 0, the FLOPs to keep: a fraction of the model's
            if <= 1, else an absolute count; the ratio is found by bisection.
        params_target: float > 0, like `flops_target` for parameters.
        min_channels: int >= 1, the fewest channels any layer keeps.
        round_to: int >= 1, round each pruned layer's output width up to a
            multiple (layers no wider than it are not rounded, except with
            `runtime="litert"`, where they keep all their channels; nor a
            stream reader's selection); None (default): 1, or with
            `runtime="litert"` (and `latency_target`) the channel multiple
            measured on this CPU (`kslim.deploy.channel_tile`).
        max_layer_ratio: float in (0, 1], the largest fraction of any one
            layer's channels pruned in this pass (0.5 in the paper's
            multi-pass scheme), or None.
        exclude: tuple of layer names whose output channels are all kept.
        latency_target: float in (0, 1], the measured LiteRT latency to keep,
            a fraction of the unpruned model's (XNNPACK, float32, batch 1,
            `latency_threads` threads); the ratio is found by bisection on
            measurements (`kslim.deploy.LatencyMeter`, cached).
        latency_threads: int >= 1, the interpreter threads for `latency_target`
            and for the tiles `runtime="litert"` measures.
        selections: "all" (default; "sliceable" with `runtime="litert"` and
            `latency_target`): where a block reads part of a shared stream,
            "all" prunes every reader's input as its factors say (the
            paper's channel selection);
            "sliceable" keeps a reader's whole input where its selection
            does not pay on LiteRT: more than `SLICE_RUNS` runs of
            consecutive channels (`kslim.export` folds such a selection into
            zero weights, giving back its FLOPs), or slices that cost more
            time than the narrower reader saves by the measured cost model
            `SLICE_COST`, at 1 or at 2 interpreter threads. Same latency or
            better, more channels kept, FLOPs counted as they run.
        quantize: the `kslim.export` quantization the plan is for (None,
            "float16", "dynamic" or "int8"): with "sliceable", int8 uses the
            int8 cost model, where slices save less. Not with
            `latency_target`, which times float32 files.
        round_inputs_to: int >= 1, the multiple a convolution's input
            channels cost in (int8 kernels on a CPU with AMX take 64 at a
            time): each pruned layer's width is rounded up to it, layers no
            wider than `round_to` included (their readers' inputs are what
            pruning them saves), and with `selections="sliceable"` a
            reader's selection saves only the whole tiles it drops and keeps
            a whole number of tiles (the rest of its last tile costs
            nothing: it keeps the channels that fill it). None
            (default): 1, or with `runtime="litert"` (and `latency_target`)
            the input tile measured on this CPU
            (`kslim.deploy.channel_tile(inputs=True)`).
        runtime: None (default): plan for FLOPs, as the paper prunes; or
            "litert": plan for LiteRT with XNNPACK on this CPU, what
            `kslim.export` files run on: `selections` defaults to
            "sliceable" and `round_to` / `round_inputs_to` to the channel
            tiles measured here for `quantize` (`kslim.deploy.channel_tile`
            at `latency_threads`, cached), whose channels cost no time, and a
            layer no wider than `round_to` keeps all its channels (a
            convolution computes its outputs in whole tiles: 1 to 16 outputs
            of a 3x3 convolution took the same time on LiteRT with
            XNNPACK), or goes whole: a narrow layer
            that only writes into concatenations (a DenseNet growth layer)
            is ranked as one unit, its readers' factors of its channels
            (`kslim.pruning.planner.Ranked`), and when they are pruned the
            layer is removed with the layers that only feed it, so that the
            plan's FLOPs fall only where time falls. A
            `latency_target` plans for "litert".

    Raises:
        ValueError / TypeError: for a missing or second budget, or a value out
            of range; the message names the parameter.
    """

    ratio: float = None
    threshold: float = None
    flops_target: float = None
    params_target: float = None
    min_channels: int = 1
    round_to: int = None
    max_layer_ratio: float = None
    exclude: tuple = ()
    latency_target: float = None
    latency_threads: int = 1
    selections: str = None
    quantize: str = None
    round_inputs_to: int = None
    runtime: str = None

    def __post_init__(self):
        given = [k for k in BUDGET_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "Give exactly one of ratio, threshold, flops_target, params_target, latency_target; "
                f"got {given or 'none'}."
            )
        checks = {
            "ratio": dict(low=0, high=1, high_open=True,
                          hint="the fraction of channels to prune (0.7 prunes 70%)"),
            "threshold": dict(low=0),
            "flops_target": dict(low=0, low_open=True, hint="a fraction (<= 1) or a count (> 1)"),
            "params_target": dict(low=0, low_open=True, hint="a fraction (<= 1) or a count (> 1)"),
            "latency_target": dict(low=0, high=1, low_open=True,
                                   hint="the fraction of the unpruned model's measured latency to keep"),
        }
        kind = given[0]
        object.__setattr__(self, kind, check_number(kind, getattr(self, kind), **checks[kind]))
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime={self.runtime!r} is not supported; use None (plan for FLOPs, as the paper "
                             "prunes) or 'litert' (plan for LiteRT with XNNPACK on this CPU).")
        litert = self.runtime == "litert" or kind == "latency_target"
        object.__setattr__(self, "runtime", "litert" if litert else None)
        object.__setattr__(self, "min_channels", check_int("min_channels", self.min_channels))
        round_to = 1 if self.round_to is None and not litert else self.round_to
        object.__setattr__(self, "round_to", check_int("round_to", round_to, allow_none=True))  # None: measured
        round_inputs_to = 1 if self.round_inputs_to is None and not litert else self.round_inputs_to
        object.__setattr__(self, "round_inputs_to", check_int("round_inputs_to", round_inputs_to, allow_none=True))
        object.__setattr__(self, "max_layer_ratio", check_number(
            "max_layer_ratio", self.max_layer_ratio, low=0, high=1, low_open=True, allow_none=True
        ))
        object.__setattr__(self, "latency_threads", check_int("latency_threads", self.latency_threads))
        selections = self.selections
        if selections is None:
            selections = "sliceable" if litert else "all"
        if selections not in SELECTIONS:
            raise ValueError(f"selections={selections!r} is not supported; use one of {SELECTIONS}.")
        object.__setattr__(self, "selections", selections)
        if self.quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize={self.quantize!r} is not supported; use one of {QUANTIZE_MODES} "
                             "(kslim.export's modes).")
        if self.quantize is not None and kind == "latency_target":
            raise ValueError(f"quantize={self.quantize!r} cannot be combined with latency_target: latency budgets "
                             "time float32 files. Plan with latency_target alone, or use a ratio or FLOPs budget "
                             "with quantize.")
        exclude = self.exclude
        if isinstance(exclude, str):
            exclude = [exclude]
        object.__setattr__(self, "exclude", tuple(exclude or ()))

    @property
    def kind(self):
        """Which budget is given: "ratio", "threshold", "flops_target", "params_target" or "latency_target"."""
        return next(k for k in BUDGET_KINDS if getattr(self, k) is not None)

    @property
    def value(self):
        return getattr(self, self.kind)

    @property
    def floors(self):
        """The per-layer limits, as keyword arguments of `Analysis.apply_floors`."""
        return dict(
            min_channels=self.min_channels, round_to=self.round_to or 1,
            round_inputs_to=self.round_inputs_to or 1, max_layer_ratio=self.max_layer_ratio,
            round_narrow=self.runtime == "litert", remove_layers=self.runtime == "litert",
        )


def ratio_cut(scores, sizes, ratio):
    """The one rule that turns a pruning ratio into the channels to prune and a threshold.

    Groups are sorted by score (ties in a fixed order: by key) and taken from
    the smallest until `round(ratio * n)` of the `n` scaling factors are
    covered, a group counting as many factors as it holds. Ranking, not a
    strict threshold, so that ties (many exact zeros after proximal training)
    are pruned as the ratio asks. `kslim.plan`, `SparsityMonitor`'s
    `ratio_threshold` and `kslim-info` all use it.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, section 3.3 (one global percentile).

    Args:
        scores: dict group key -> score (max |factor| of the group).
        sizes: dict group key -> number of scaling factors in it.
        ratio: float in [0, 1).

    Returns:
        `(pruned keys, threshold)`: the threshold is the smallest score kept
        (`inf` when everything is pruned).
    """
    order = sorted(scores, key=lambda r: (scores[r], r))
    target = int(round(ratio * sum(sizes[r] for r in order)))
    pruned, count = set(), 0
    for key in order:
        if count >= target:
            return pruned, float(scores[key])
        pruned.add(key)
        count += sizes[key]
    return pruned, float("inf")
