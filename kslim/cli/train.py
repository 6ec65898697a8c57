"""`train_file`: train a model, with or without the sparsity penalty; what `bin/kslim-train` runs."""

import os

from kslim.cli import common as _commands
from kslim._internal import files as _files
from kslim._internal.checks import check_number


def train_file(
    model=None,
    output=None,
    data="mnist",
    epochs=None,
    batch_size=None,
    lr=None,
    lam=0.0,
    penalty="l1",
    init=None,
    strategy="none",
    limit=None,
    overwrite=False,
    seed=0,
    verbose=None,
    print_fn=print,
):
    """Trains a model on a dataset and writes it to a `.keras` file.

    Use it for the training steps of network slimming from scripts and the
    `kslim-train` command: the baseline (`lam=0`), sparsity training
    (`lam > 0`: `kslim.attach` and the `kslim.callbacks.SparsityMonitor` logs)
    and fine-tuning a pruned model (`init=`, `lam=0`: any penalty it was
    saved with is removed). Training follows `kslim.recipe.paper(data)`
    (CIFAR's recipe for data it has no entry for), with `epochs`,
    `batch_size` and `lr` overriding it. Arguments and paths are checked
    before anything is trained; the output is written atomically and never
    over an input.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017.

    Args:
        model: str, a zoo name (`kslim.models.list_models()`, built for the
            data's classes and image shape, with BN gamma initialised to 0.5
            as in the paper; LeNet-5 gets channel masks), or a `.keras` file
            whose architecture is trained from scratch (new weights). Give
            `model` or `init`.
        output: str, the `.keras` file to write.
        data: str, a dataset name or path for `kslim.data.load` (`"mnist"` is
            bundled).
        epochs, batch_size, lr: optional overrides of the recipe.
        lam: float >= 0, the sparsity penalty weight; 0 trains without one.
        penalty: str, a name from `kslim.penalties.names()`.
        init: optional str, a `.keras` model to start from, weights included
            (fine-tuning).
        strategy: `"none"`, `"mirrored"` or `"multiworker"`
            (`tf.distribute`); the model is built and compiled in its scope.
        limit: optional int, train and test on the first `limit` images only.
        overwrite: bool, replace an existing `output`.
        seed: int or None, the random seed (`keras.utils.set_random_seed`).
        verbose: Keras's `fit` verbosity; None for progress bars in a
            terminal and one line per epoch otherwise (a log file).
        print_fn: callable for the report, or None for silence.

    Returns:
        `(model, accuracy)`: the trained `keras.Model` and its test accuracy
        (None for data without a test split).

    Raises:
        FileNotFoundError: for a missing model, init or data file.
        FileExistsError: if `output` exists and `overwrite` is False.
        ValueError: for bad arguments, an output that is an input or not
            `.keras`, a file that is not a Keras model.

    Example:

    >>> model, accuracy = train_file("mlp", "sparse.keras", lam=1e-3, epochs=10)
    """
    if (model is None) == (init is None):
        raise ValueError(
            "Give --model (a zoo name, or a .keras file to train from scratch) or --init (a "
            ".keras model to fine-tune), not both and not neither."
        )
    if output is None:
        raise ValueError("Give --output, the .keras file to write.")
    output = os.fspath(output)
    if not output.endswith(".keras"):
        raise ValueError(f"The output {output} must end in .keras (Keras's model format).")
    inputs = [init] + ([model] if model is not None and _commands.is_model_file(model) else [])
    _files.check_output(output, inputs, overwrite)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("limit", limit)):
        _commands.check_positive(name, value)
    check_number("lam", lam, low=0, hint="0 trains without the penalty")
    from kslim import penalties

    penalties.get(penalty, lam)  # fails fast on an unknown name
    verbose = _commands.fit_verbosity(verbose)
    _commands.set_seed(seed)
    strategy_obj = _commands.get_strategy(strategy)
    recipe = _commands.recipe_for(data, epochs, batch_size, lr, model=model)
    train, test, info = _commands.load_data(data, recipe.batch_size, limit)
    if verbose:
        print(f"recipe: the paper's {_commands.dataset_kind(data)} schedule, {recipe.epochs} epochs "
              f"at batch {recipe.batch_size}, lr {recipe.lr:g} (override with epochs, batch_size, lr)",
              flush=True)

    from kslim.sparsity.attachment import attach, detach
    from kslim.callbacks import SparsityMonitor
    from kslim.training.divergence import StopOnDivergence
    from kslim.slimming.loop import _ends_in_softmax

    with _commands.scope(strategy_obj):
        net = _commands.build_model(init, info) if init is not None else _commands.build_model(
            model, info, reinitialize=True
        )
        hint = f"lower --lr (now {recipe.lr:g})" + (f" or --lam (now {lam:g})" if lam > 0 else "")
        callbacks = [StopOnDivergence(hint)]
        if lam > 0:
            attach(net, lam=lam, penalty=penalty)
            callbacks.append(SparsityMonitor())
        else:
            detach(net)
        steps = int(train.cardinality())
        recipe.compile(net, steps_per_epoch=steps, from_logits=not _ends_in_softmax(net))
    if print_fn is not None:
        what = f"sparsity training (lam={lam:g}, {penalty})" if lam > 0 else "training"
        print_fn(
            f"{what} of '{net.name}' ({net.count_params():,} params) on {data}: {recipe.epochs} "
            f"epochs of {steps} batches of {recipe.batch_size}, lr {recipe.lr:g}"
        )
    net.fit(train, epochs=recipe.epochs, callbacks=callbacks, verbose=verbose, shuffle=False)
    accuracy = None
    if test is not None:
        accuracy = float(net.evaluate(test, verbose=0, return_dict=True)["accuracy"])
    _files.write_atomic(output, lambda path: _files.save_model(net, path))
    if print_fn is not None:
        if accuracy is not None:
            print_fn(f"test accuracy: {100 * accuracy:.2f}%")
        print_fn(f"wrote {output} ({os.path.getsize(output) / 1e6:.2f} MB)")
    return net, accuracy
