"""`kslim.prune`: plan + surgery in one call."""

from kslim.pruning import nesting
from kslim.pruning import surgery
from kslim.pruning import verify
from kslim.pruning.analysis import Analysis
from kslim.pruning.planner import Plan
from kslim.pruning.planner import decide, make_budget, make_plan


def prune(
    model,
    ratio=None,
    threshold=None,
    flops_target=None,
    params_target=None,
    plan=None,
    min_channels=1,
    round_to=None,
    max_layer_ratio=None,
    exclude=(),
    compensate=True,
    rebalance=True,
    budget=None,
    keep_penalty=False,
    latency_target=None,
    latency_threads=1,
    selections=None,
    quantize=None,
    round_inputs_to=None,
    runtime=None,
):
    """Returns a new, physically narrower copy of `model` without its weakest channels.

    Decides with `kslim.plan` (or applies a given `plan`), then rebuilds the
    model from its config with fewer filters/units and copies the kept weight
    slices. Layer names are kept; `model` is not modified. The result is plain
    Keras, plus `kslim.layers.ChannelSelect` where a block reads part of a
    shared stream (pre-activation ResNet, DenseNet); `ChannelMask` layers that
    follow a linear producer are folded into its weights. Such a stream's
    channels are reordered, the same way in every layer that writes or reads
    it, so that its readers' selections are few runs of consecutive channels,
    which LiteRT runs as slices (`kslim.pruning.permutation`); the plan's
    `in` and `out` lists give the original position of each new channel.

    Nested models (a `keras.applications` backbone called as one layer of
    your model, a Sequential inside a functional model, at any depth) are
    pruned through: the result is one flat functional model with the same
    layers under the same names, without the wrappers. So
    `pruned.get_layer("block_1_expand")` works, but the backbone's own name
    (e.g. `"mobilenetv2_0.35_32"`) no longer names a layer of the result.
    A custom layer without a handler whose weights all belong to the Keras
    layers it calls (a KerasHub `MBConvBlock`, your own conv-BN block) is
    inlined the same way: its `call` is traced into those layers.

    Before fine-tuning, the pruned model computes what the original computes
    with the pruned scaling factors set to zero: the constant that each pruned
    channel still emits (BN's beta through the activation) is folded into the
    next layer's bias, or into the next BN's moving mean when that layer has
    no bias, or else into a bias the layer is given. This is exact for Dense
    layers and 1x1 convolutions, and for larger kernels with a static input
    size a `kslim.layers.BorderBias` makes it exact on the zero-padded border
    too (see `compensate`).

    Folded masks (Yang et al.'s L1-trained `ChannelMask`s) leave much of the
    network's gain in the layers they followed, whose weights can then be
    tens of times smaller than their neighbours' and make fine-tuning at the
    original learning rate diverge. With `rebalance`, wherever linear layers
    follow each other through positively homogeneous layers only (ReLU,
    pooling, Flatten, dropout, ...), each kernel of the chain is rescaled so
    that all carry the same share of the masks' gain (biases follow): the
    model's outputs do not change.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017.

    Args:
        model: a built functional or Sequential Keras model.
        ratio: the budget and its options, as in `kslim.plan`, like
            `threshold`, `flops_target`, `params_target`, `min_channels`,
            `round_to`, `max_layer_ratio`, `exclude`, `latency_target`,
            `latency_threads`, `selections`, `quantize`, `round_inputs_to`
            and `runtime`.
        plan: a `kslim.Plan` (from `kslim.plan` or `Plan.from_json`) to
            apply instead of a budget.
        compensate: fold the constant that each pruned channel leaves
            (BN's beta through the activation) into the layers that read it.
            True (default): exactly, as a bias, and for a same-padded
            convolution wider than 1x1 with a static input size also as a
            `kslim.layers.BorderBias` after it, which adds what differs on
            the zero-padded border (a non-trainable kernel of k x k x
            channels). "interior": the bias alone, exact away from the
            borders, no extra layer. False: no fold.
        rebalance: bool, spread the gain of folded `ChannelMask`s evenly over
            each chain of linear layers (default True); no effect on models
            without masks.
        budget: a `kslim.Budget` instead of the budget arguments.
        keep_penalty: bool, keep the sparsity penalties that `kslim.attach`
            set on the scaling factors. By default the pruned model has none,
            so that fine-tuning trains without the penalty, as in the paper;
            `kslim.attach` it again for another pass of sparsity training.

    Returns:
        A new `keras.Model` (a `keras.Sequential` for a Sequential input).

    Raises:
        ValueError: for a bad budget, a plan made for another model, or a
            model kslim cannot analyse (e.g. a subclassed model).

    Example:

    >>> slim = kslim.prune(model, ratio=0.6)
    >>> kslim.profile(slim).params < kslim.profile(model).params
    True
    """
    if plan is None:
        budget = make_budget(budget, ratio, threshold, flops_target, params_target,
                             min_channels, round_to, max_layer_ratio, exclude,
                             latency_target, latency_threads, selections, quantize, round_inputs_to,
                             runtime)
    elif any(v is not None for v in (ratio, threshold, flops_target, params_target, latency_target)):
        budget = "given"  # refused below
    slim = prune_and_plan(
        model, budget=budget, plan=plan, compensate=compensate, rebalance=rebalance
    )[1]
    if not keep_penalty:
        from kslim.sparsity.attachment import detach  # imported here: sparsity imports pruning

        detach(slim)
    return slim


def prune_and_plan(model, budget=None, plan=None, compensate=True, rebalance=True):
    """`(plan, pruned model)` from one analysis of `model`: `kslim.prune` that also gives its plan.

    Args:
        model: see `kslim.prune`.
        budget: a `kslim.Budget`, or None with a `plan`.
        plan: a `kslim.Plan` to apply, or None with a `budget`.
        compensate, rebalance: see `kslim.prune`.
    """
    if compensate not in (True, False, "interior"):
        raise ValueError(f"compensate={compensate!r} is not supported; use True, False or 'interior'.")
    original, model = model, nesting.flatten(model)  # a backbone used as a layer is pruned through, inlined
    if plan is not None:
        if budget is not None:
            raise ValueError("Give either plan= or a budget (ratio, threshold, ...), not both.")
        if not isinstance(plan, Plan):
            raise TypeError(
                f"plan must be a kslim.Plan, got {type(plan).__name__}; "
                "read a saved plan with kslim.Plan.from_json(text)."
            )
        analysis = Analysis(model)
        pruned = surgery.pruned_groups(analysis, plan)
        # The plan says which channels go; the channel order (stream permutation) is made again,
        # so a plan saved before it, or by another kslim version, rebuilds the same way.
        kept_reasons = plan.kept_reasons
        plan = make_plan(model, analysis, pruned, plan.budget, plan.threshold)
        plan.kept_reasons = dict(kept_reasons)
    else:
        analysis = Analysis(model, exclude=budget.exclude)  # the one analysis of this prune
        plan, pruned = decide(analysis, budget)
    slim = surgery.rebuild(model, analysis, plan, pruned, compensate=compensate, rebalance=rebalance)
    # Returned only once it ran on inputs of the model's shape and, with exact compensation, matched the
    # masked model: a rebuilt layer that cannot be called or that computes otherwise is an error, not a model.
    verify.check(model, slim, plan, compare=compensate is True, original=original)
    return plan, slim
