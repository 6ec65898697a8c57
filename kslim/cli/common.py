"""What the training commands share: strategies, models by name or file, data, recipes."""

import contextlib
import inspect
import json
import os
import sys

from kslim._internal.checks import check_int

STRATEGIES = ("none", "mirrored", "multiworker")


def get_strategy(name):
    """A `tf.distribute.Strategy` for a `--strategy` value, or None for `"none"`.

    Raises:
        ValueError: for an unknown name.
    """
    if name in (None, "none"):
        return None
    if name not in STRATEGIES:
        raise ValueError(f"strategy={name!r} is not one of {list(STRATEGIES)}.")
    if name == "multiworker":
        check_single_worker()
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    # Reads the cluster from $TF_CONFIG; without it, a one-worker cluster.
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_single_worker(environ=None):
    """Refuses a `$TF_CONFIG` cluster of several workers, which Keras 3's `fit` cannot train on.

    Under `tf.distribute.MultiWorkerMirroredStrategy` with two or more workers,
    Keras 3's `Model.fit` fails at its first step ("Attempt to convert a value
    (PerReplica...) to a Tensor"; keras-team/keras#20585, tensorflow#72388,
    measured here with two workers on the loopback address). A one-worker
    cluster trains as without one.

    Raises:
        ValueError: for a cluster of more than one worker, or a `$TF_CONFIG`
            that is not JSON.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text:
        return
    try:
        cluster = json.loads(text).get("cluster", {})
    except (ValueError, AttributeError) as error:
        raise ValueError(f"$TF_CONFIG is not a JSON object ({error}); fix it or unset it.") from None
    workers = sum(len(cluster.get(kind, [])) for kind in ("chief", "worker"))
    if workers > 1:
        raise ValueError(
            f"strategy='multiworker' with {workers} workers in $TF_CONFIG: Keras 3's Model.fit does not "
            "train under tf.distribute.MultiWorkerMirroredStrategy with more than one worker (its first "
            "step fails; keras-team/keras#20585). Train on one machine with --strategy mirrored (all its "
            "devices), or unset TF_CONFIG."
        )


def scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def worker_suffix(strategy):
    """`""` on the chief (or without a cluster), `"-worker{i}"` on the other workers.

    Every worker of a MultiWorkerMirroredStrategy trains and saves; only the
    chief's files are the result, so the others write beside it.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = getattr(resolver, "task_id", 0) or 0
    if task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and not _has_chief(resolver)):
        return ""
    return f"-{task_type}{task_id}"


def _has_chief(resolver):
    try:
        return "chief" in resolver.cluster_spec().as_dict()
    except Exception:  # a resolver without a cluster spec
        return False


def is_model_file(model):
    return os.fspath(model).endswith(".keras")


def build_model(model, data_info, reinitialize=False):
    """A zoo model by name (sized for the data), or a `.keras` file.

    Zoo models get the paper's BN scale init (`gamma_init=0.5`); a model
    without BN (LeNet-5) gets channel masks instead, so every zoo model has
    scaling factors to slim. A file is loaded with safe mode on; with
    `reinitialize`, its architecture gets fresh weights (training from
    scratch).

    Raises:
        ValueError: for an unknown zoo name (listing the names) or a bad file.
        FileNotFoundError: for a missing file.
    """
    import keras

    from kslim._internal import files as _files
    from kslim import models

    if is_model_file(model):
        loaded = _files.load_model(model)
        return keras.models.clone_model(loaded) if reinitialize else loaded
    if model not in models.list_models():
        raise ValueError(
            f"model={model!r} is neither a .keras file nor a zoo model; the zoo models are "
            f"{', '.join(models.list_models())}."
        )
    accepted = inspect.signature(models.builder(model)).parameters
    # vgg19(num_classes, input_shape, **kwargs) passes gamma_init on to vgg(): a builder that takes
    # **kwargs takes it too.
    forwards = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    kwargs = {}
    if "gamma_init" in accepted or forwards:
        kwargs["gamma_init"] = 0.5
    elif "channel_masks" in accepted:
        kwargs["channel_masks"] = True
    return models.get(
        model, num_classes=data_info["num_classes"], input_shape=data_info["image_shape"], **kwargs
    )


_PAPER_DATASETS = ("cifar100", "cifar10", "svhn", "mnist", "imagenet")  # cifar100 before cifar10


def dataset_kind(data):
    """Which of the paper's datasets `data` is, for its recipe: from the name, else the images.

    `mnist`, `../shared/data/mnist.npz` and `mnist-train.tar.gz` are all MNIST;
    a file named otherwise with 28x28x1 images is MNIST too. Anything else is
    taken as CIFAR-like (the paper's default).
    """
    stem = os.path.basename(os.fspath(data)).lower()
    for kind in _PAPER_DATASETS:
        if kind in stem:
            return kind
    try:
        from kslim import data as datasets

        if tuple(datasets.info(data)["image_shape"]) == (28, 28, 1):
            return "mnist"
    except (ValueError, OSError, KeyError):
        pass
    return "cifar10"


def recipe_for(data, epochs=None, batch_size=None, lr=None, model=None):
    """The paper's recipe for the kind of data (`dataset_kind`), with what zoo model `model` registered
    (`kslim.models.register(recipe=...)`), then the overrides."""
    from kslim.models.registry import recipe_changes
    from kslim.training import recipe

    base = recipe.paper(dataset_kind(data))
    if isinstance(model, str):
        base = base.replace(**recipe_changes(model))
    changes = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
    return base.replace(**{k: v for k, v in changes.items() if v is not None})


def load_data(data, batch_size, limit):
    """`(train, test, info)`; `limit` caps both splits (test at least its first `limit` images)."""
    from kslim import data as datasets

    info = datasets.info(data)
    train = datasets.load(data, "train", batch_size=batch_size, limit=limit)
    test = None
    if info["test_examples"]:
        test = datasets.load(data, "test", batch_size=max(batch_size, 256), limit=limit)
    return train, test, info


def fit_verbosity(verbose):
    """Keras's `fit` verbosity: progress bars in a terminal, one line per epoch in a log file."""
    if verbose is None:
        return 1 if sys.stdout.isatty() else 2
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose={verbose!r}; use 0, 1, 2 or None (bars in a terminal, lines otherwise).")
    return verbose


def set_seed(seed):
    """Seeds Python, NumPy and the backend (`keras.utils.set_random_seed`), unless `seed` is None."""
    if seed is None:
        return
    check_int("seed", seed, low=0)
    import keras

    keras.utils.set_random_seed(seed)


def check_positive(name, value, allow_none=True):
    check_int(name, value, low=1, allow_none=allow_none)


def budget_from_flags(values):
    """The `kslim.Budget` of parsed flags (`FLAGS`, one flag per field), or None when no
    budget flag is set (a plan file is given instead)."""
    import dataclasses

    from kslim.pruning.budget import BUDGET_KINDS, Budget

    if all(getattr(values, k) is None for k in BUDGET_KINDS):
        return None
    return Budget(**{f.name: getattr(values, f.name) for f in dataclasses.fields(Budget)})
