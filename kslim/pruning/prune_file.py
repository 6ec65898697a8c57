"""`prune_file`: prune a saved `.keras` model into a new file; what `bin/kslim-prune` runs."""

import os

from kslim import _files
from kslim.pruning.plan import Plan
from kslim.pruning.plan import plan as make_plan
from kslim.pruning.prune import prune


def prune_file(
    model_path,
    output,
    ratio=None,
    threshold=None,
    flops_target=None,
    params_target=None,
    plan=None,
    save_plan=None,
    min_channels=1,
    round_to=1,
    max_layer_ratio=None,
    exclude=(),
    compensate=True,
    overwrite=False,
    print_fn=print,
):
    """Loads a `.keras` model, prunes it, and writes the smaller model atomically.

    Use it from scripts and the `kslim-prune` command when the model is on
    disk. It prints the plan's per-layer table and the params/FLOPs before and
    after. Paths are checked before anything is loaded; the output is written
    to a temporary file and renamed, so a failure leaves no file behind, and
    the input is never overwritten.

    Args:
        model_path: str, the `.keras` file to prune.
        output: str, the `.keras` file to write.
        ratio, threshold, flops_target, params_target, min_channels,
            round_to, max_layer_ratio, exclude, compensate: see `kslim.prune`.
        plan: optional str, a plan JSON file (from `Plan.to_json`) to apply
            instead of a budget.
        save_plan: optional str, where to write the plan as JSON.
        overwrite: bool, replace an existing `output` (never the input).
        print_fn: callable for the report, or None for silence.

    Returns:
        `(plan, pruned_model)`.

    Raises:
        FileNotFoundError: if the model or plan file does not exist.
        FileExistsError: if `output` exists and `overwrite` is False.
        ValueError: for an output that is an input or not `.keras`, a file
            that is not a Keras model, a subclassed model, or a bad budget.

    Example:

    >>> plan, slim = prune_file("trained.keras", "slim.keras", ratio=0.6)
    """
    output = os.fspath(output)
    if not output.endswith(".keras"):
        raise ValueError(f"The output {output} must end in .keras (Keras's model format).")
    _files.check_output(output, [model_path, plan, save_plan], overwrite)
    if save_plan is not None:
        _files.check_output(save_plan, [model_path, plan, output], overwrite)
    if plan is not None:
        if not os.path.isfile(plan):
            raise FileNotFoundError(f"No plan file at '{plan}'; check the --plan path.")
        with open(plan) as f:
            plan = Plan.from_json(f.read())
    model = _files.load_model(model_path)
    if plan is None:
        plan = make_plan(
            model,
            ratio=ratio,
            threshold=threshold,
            flops_target=flops_target,
            params_target=params_target,
            min_channels=min_channels,
            round_to=round_to,
            max_layer_ratio=max_layer_ratio,
            exclude=exclude,
        )
    slim = prune(model, plan=plan, compensate=compensate)
    _files.write_atomic(output, slim.save)
    if save_plan is not None:
        _files.write_atomic(save_plan, lambda path: _write_text(path, plan.to_json()))
    if print_fn is not None:
        print_fn(plan.summary(print_fn=False))
        print_fn(f"wrote {output} ({os.path.getsize(output) / 1e6:.2f} MB)")
    return plan, slim


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
