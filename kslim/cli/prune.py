"""`prune_file`: prune a saved `.keras` model into a new file; what `bin/kslim-prune` runs."""

import os

from kslim._internal import files as _files
from kslim.pruning.budget import Budget
from kslim.pruning.planner import Plan
from kslim.pruning.pruner import prune_and_plan
from kslim.sparsity.attachment import detach


def prune_file(
    model_path,
    output,
    budget=None,
    plan=None,
    save_plan=None,
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
        budget: a `kslim.Budget` (how much to prune, per-layer limits), or
            None when a `plan` is given.
        plan: optional str, a plan JSON file (from `Plan.to_json`) to apply
            instead of a budget.
        save_plan: optional str, where to write the plan as JSON.
        compensate: see `kslim.prune`.
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

    >>> plan, slim = prune_file("trained.keras", "slim.keras", kslim.Budget(ratio=0.6))
    """
    output = os.fspath(output)
    if (budget is None) == (plan is None):
        raise ValueError(
            "prune_file: give budget= (a kslim.Budget: ratio, threshold, flops_target, params_target or "
            "latency_target) or plan= (a plan file), exactly one of them."
        )
    if budget is not None and not isinstance(budget, Budget):
        raise TypeError(f"prune_file: budget must be a kslim.Budget, got {type(budget).__name__}.")
    if not output.endswith(".keras"):
        raise ValueError(f"The output {output} must end in .keras (Keras's model format).")
    _files.check_output(output, [model_path, plan, save_plan], overwrite)
    if save_plan is not None:
        _files.check_output(save_plan, [model_path, plan, output], overwrite)
    if plan is not None:
        if not os.path.isfile(plan):
            raise FileNotFoundError(f"No plan file at '{plan}'; check the plan's path.")
        plan_path = plan
        with open(plan_path) as f:
            try:
                plan = Plan.from_json(f.read())
            except ValueError as error:
                raise ValueError(f"{plan_path}: {error}") from None
    model = _files.load_model(model_path)
    try:
        plan, slim = prune_and_plan(model, budget=budget, plan=plan, compensate=compensate)
    except ValueError as error:
        if budget is None:  # the plan does not fit the model: name the plan's file
            raise ValueError(f"{plan_path}: {error}") from None
        raise
    detach(slim)  # as kslim.prune: the pruned model is fine-tuned without the penalty
    jobs = [(output, lambda path: _files.save_model(slim, path))]
    if save_plan is not None:
        jobs.append((save_plan, lambda path: _write_text(path, plan.to_json())))
    _files.write_all_atomic(jobs)  # the model and its plan, or neither
    if print_fn is not None:
        print_fn(plan.summary(print_fn=False))
        print_fn(f"wrote {output} ({os.path.getsize(output) / 1e6:.2f} MB)")
    return plan, slim


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
