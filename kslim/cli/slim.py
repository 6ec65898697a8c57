"""`slim_run`: the whole slimming pipeline from names and paths; what `bin/kslim-slim` runs."""

import os

from kslim.cli import common as _commands


def slim_run(
    model="mlp",
    data="mnist",
    run_dir=None,
    passes=1,
    ratio=0.8,
    lam=3e-3,
    penalty="l1",
    epochs=10,
    finetune_epochs=5,
    batch_size=None,
    lr=None,
    limit=None,
    strategy="none",
    plots=True,
    seed=0,
    verbose=None,
    print_fn=print,
):
    """Slims a zoo model or a `.keras` file on a dataset with `kslim.slim`, into a run folder.

    Use it for the end-to-end job from scripts and the `kslim-slim` command.
    The defaults are the README's main run: the paper's MNIST MLP
    (784-500-300-10 with BN, gamma initialised to 0.5) on the bundled real
    MNIST, 10 epochs of sparsity training with L1 at `lam=3e-3`, 80% of the
    800 hidden neurons pruned, 5 epochs of fine-tuning, with the paper's MNIST
    recipe (SGD, Nesterov momentum 0.9, weight decay 1e-4, batch 256, lr 0.1
    divided by 10 after 1/3 and 2/3 of the epochs). It prints the plan of
    every pass and, at the end, one line with params, FLOPs and test accuracy
    before and after. Calling it again with the same arguments resumes an
    interrupted run, or just prints the result of a finished one.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017.

    Args:
        model: str, a zoo name (`kslim.models.list_models()`, built for the
            data with BN gamma initialised to 0.5; LeNet-5 gets channel masks)
            or a `.keras` file (trained or not).
        data: str, a dataset name or path for `kslim.data.load`.
        run_dir: str, the run folder; `runs/slim-<model>-<data>` when None.
        passes, ratio, lam, penalty, epochs, finetune_epochs: see
            `kslim.slim`.
        batch_size, lr: optional overrides of `kslim.recipe.paper(data)`
            (CIFAR's recipe for data it has no entry for).
        limit: optional int, use the first `limit` training and test images.
        strategy: `"none"`, `"mirrored"` or `"multiworker"`; on workers other
            than the chief, `run_dir` gets a `-worker<i>` suffix.
        plots: bool, draw PNG plots into `run_dir` (needs matplotlib).
        seed: int or None, the random seed (`keras.utils.set_random_seed`):
            weight init and data order; None for an unseeded run.
        verbose: 0, 1 or 2, as in `kslim.slim`; None for progress bars in a
            terminal and one line per epoch otherwise (a log file).
        print_fn: callable for the final line, or None.

    Returns:
        The `kslim.slimming.SlimResult`.

    Raises:
        FileNotFoundError: for a missing model or data file.
        ValueError: for bad arguments, or a `run_dir` made with other
            arguments (naming the argument).
        ImportError: with `plots` but no matplotlib.

    Example:

    >>> result = slim_run()          # the README's run, about a minute on 2 cores
    >>> result = slim_run("vgg19", "cifar10", passes=2, ratio=0.5, lam=1e-4, epochs=160)
    """
    for name, value in (("batch_size", batch_size), ("limit", limit)):
        _commands.check_positive(name, value)
    verbose = _commands.fit_verbosity(verbose)
    _commands.set_seed(seed)
    strategy_obj = _commands.get_strategy(strategy)
    if run_dir is None:
        run_dir = os.path.join("runs", f"slim-{_stem(model)}-{_stem(data)}")
    run_dir = os.fspath(run_dir) + _commands.worker_suffix(strategy_obj)
    recipe = _commands.recipe_for(data, None, batch_size, lr, model=model)
    train, test, info = _commands.load_data(data, recipe.batch_size, limit)
    if verbose:
        print(f"recipe: the paper's {_commands.dataset_kind(data)} schedule at batch "
              f"{recipe.batch_size}, lr {recipe.lr:g}; {epochs} epochs of sparsity training and "
              f"{finetune_epochs} of fine-tuning per pass (override with batch_size, lr, epochs, "
              "finetune_epochs)", flush=True)
    with _commands.scope(strategy_obj):
        net = _commands.build_model(model, info)

    from kslim.slimming.loop import slim

    if verbose:
        print(f"slimming '{net.name}' ({net.count_params():,} params) on {data} into {run_dir}", flush=True)
    result = slim(
        net,
        train,
        test,
        passes=passes,
        ratio=ratio,
        lam=lam,
        penalty=penalty,
        epochs=epochs,
        finetune_epochs=finetune_epochs,
        recipe=recipe,
        run_dir=run_dir,
        strategy=strategy_obj,
        plots=plots,
        verbose=verbose,
    )
    if print_fn is not None:
        print_fn(f"{net.name} {result}")
        print_fn(f"models, plans, metrics.json, CSV logs{' and plots' if plots else ''} are in {run_dir}")
    return result


def _stem(path):
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    for ext in (".keras", ".tar.gz", ".tgz", ".tar", ".npz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name
