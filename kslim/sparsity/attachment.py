"""`attach` / `detach`: put a sparsity penalty on every channel scaling factor of a model."""

import warnings

import keras

from kslim import penalties
from kslim.sparsity.factors import factor_attr
from kslim.sparsity.factors import how_to_add_factors, iter_layers

# Names are listed in error messages up to this many; a ResNet-164 has ~160.
_MAX_LISTED = 20


def attach(model, lam=1e-4, penalty="l1", exclude=(), **penalty_args):
    """Puts a sparsity penalty on every trainable channel scaling factor, in place.

    This is the training half of network slimming: call it once on a model,
    then compile (or not: it also works on a compiled or already trained model)
    and train as usual. The penalty is a Keras regularizer, so it appears in
    `model.losses`, is added to the training loss by `fit`, and is saved in and
    loaded from `.keras` files like any other regularizer.

    The scaling factors are the `gamma` of every `BatchNormalization` with
    `scale=True` and the `mask` of every `kslim.layers.ChannelMask`, nested
    models included. Frozen layers (`trainable=False`) are left alone. The
    penalty is set both on the variable (which is what training reads) and on
    the layer's `gamma_regularizer` / `mask_regularizer` attribute (which is
    what `model.save` writes); layers not built yet get the attribute only and
    create their variable with it. The model's cached train and test functions
    are dropped so the next `fit` / `evaluate` retraces and sees the penalty.

    Calling `attach` again replaces the penalty it put there before (to change
    `lam`, say). It refuses to overwrite a regularizer that is not a kslim
    penalty.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, eq. (1); Yang et al., IEEE Access 2019, for
    channel masks.

    Args:
        model: a `keras.Model` (Sequential, functional or subclassed with
            tracked layers).
        lam: float >= 0, the penalty weight (1e-4 for VGG, 1e-5 for
            ResNet/DenseNet in Liu et al.); used only when `penalty` is a name.
        penalty: a name from `kslim.penalties.names()` (`"l1"`, ...) or a
            `kslim.penalties.Penalty` instance.
        exclude: iterable of layer names (BatchNormalization or ChannelMask)
            whose scaling factor gets no penalty.
        **penalty_args: the penalty's own parameters (`p`, `a`, ...), with a
            penalty name.

    Returns:
        The same `model`, with the penalty attached.

    Raises:
        TypeError: if `model` is not a `keras.Model`.
        ValueError: for an invalid `lam` or penalty, a name in `exclude` that
            is not a scaling-factor layer of the model, a non-kslim regularizer
            already on a scaling factor, or a model with no scaling factor left
            to penalise.

    Example:

    >>> model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3),
    ...                           keras.layers.BatchNormalization(), keras.layers.ReLU()])
    >>> model = kslim.attach(model, lam=1e-4)
    >>> len(model.losses)
    1
    """
    _check_model(model, "attach")
    reg = penalties.get(penalty, lam, **penalty_args)
    targets = _targets(model, exclude)
    for layer, attr in targets:
        current = getattr(layer, f"{attr}_regularizer", None)
        if current is not None and not isinstance(current, penalties.Penalty):
            raise ValueError(
                f"Layer '{layer.name}' already has {attr}_regularizer={current!r}, which is not a "
                "kslim penalty, and attach would replace it. Remove it first (set the layer's "
                f"`{attr}_regularizer` and its `{attr}.regularizer` to None), or pass "
                f"exclude=['{layer.name}']."
            )
    frozen = _frozen_factors(model, exclude)
    if frozen:
        names = sorted(frozen)
        message = (
            f"{sum(frozen.values())} scaling factors in {', '.join(repr(n) for n in names[:3])}"
            f"{' ...' if len(names) > 3 else ''} are frozen (trainable=False) and get no penalty, so "
            "sparsity training cannot shrink them"
        )
        if not targets:
            raise ValueError(
                f"Model '{model.name}': {message}. Unfreeze them first (e.g. base.trainable = True for a "
                "frozen backbone), or prune without sparsity training."
            )
        warnings.warn(f"attach: {message}; set trainable = True on them (or their backbone) to slim them.",
                      stacklevel=2)
    if not targets:
        raise ValueError(
            f"Model '{model.name}' has no trainable channel scaling factor to penalise"
            f"{' outside exclude=' + repr(sorted(exclude)) if exclude else ''}: {how_to_add_factors(model)}."
        )
    for layer, attr in targets:
        setattr(layer, f"{attr}_regularizer", reg)
        variable = getattr(layer, attr, None)
        if variable is not None:
            variable.regularizer = reg
    _reset_compiled_functions(model)
    return model


def _frozen_factors(model, exclude):
    """`{frozen layer or model name: number of factors}` of the scaling factors `trainable=False` hides."""
    found = {}
    for outer in model.layers:
        inner = iter_layers(outer) if isinstance(outer, keras.Model) else [outer]
        for layer in inner:
            attr = factor_attr(layer)
            variable = getattr(layer, attr, None) if attr else None
            if variable is None or layer.name in exclude or (layer.trainable and outer.trainable):
                continue
            name = outer.name if not outer.trainable and outer is not layer else layer.name
            found[name] = found.get(name, 0) + int(variable.shape[0])
    return found


def detach(model):
    """Removes the kslim penalties that `attach` put on a model, in place.

    Use it to train or fine-tune without the sparsity penalty, for example
    after pruning a model that was loaded with its penalty. Only kslim
    penalties (`kslim.penalties.Penalty` instances) are removed; any other
    regularizer, on a scaling factor or elsewhere, stays. Like `attach`, it
    drops the cached train and test functions so the next `fit` retraces.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017 (the pruned model is fine-tuned without
    the penalty).

    Args:
        model: a `keras.Model`.

    Returns:
        The same `model`, without kslim penalties. A model that had none is
        returned unchanged.

    Raises:
        TypeError: if `model` is not a `keras.Model`.

    Example:

    >>> model = kslim.detach(kslim.attach(model, lam=1e-4))
    >>> model.losses
    []
    """
    _check_model(model, "detach")
    for layer in iter_layers(model):
        attr = factor_attr(layer)
        if attr is None:
            continue
        if isinstance(getattr(layer, f"{attr}_regularizer", None), penalties.Penalty):
            setattr(layer, f"{attr}_regularizer", None)
        variable = getattr(layer, attr, None)
        if variable is not None and isinstance(variable.regularizer, penalties.Penalty):
            variable.regularizer = None
    _reset_compiled_functions(model)
    return model


def _check_model(model, name):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"kslim.{name} expects a keras.Model, got {type(model).__name__}: {model!r}; "
            "pass the whole model (wrap a layer in keras.Sequential if needed)."
        )


def _targets(model, exclude):
    """`[(layer, attr)]` for the trainable scaling factors outside `exclude`."""
    if isinstance(exclude, str):
        exclude = (exclude,)
    exclude = set(exclude)
    candidates = [(layer, factor_attr(layer)) for layer in iter_layers(model)]
    candidates = [(layer, attr) for layer, attr in candidates if attr is not None]
    valid = {layer.name for layer, _ in candidates}
    unknown = sorted(exclude - valid)
    if unknown:
        names = sorted(valid)
        listed = ", ".join(repr(n) for n in names[:_MAX_LISTED])
        if len(names) > _MAX_LISTED:
            listed += f", ... ({len(names) - _MAX_LISTED} more)"
        raise ValueError(
            f"exclude={unknown} names no layer of model '{model.name}' that has a channel "
            "scaling factor (BatchNormalization with scale=True, ChannelMask); valid names "
            f"are: [{listed}]."
        )
    return [
        (layer, attr)
        for layer, attr in candidates
        if layer.name not in exclude and layer.trainable
    ]


def _reset_compiled_functions(model):
    # Keras traces `train_step` once and caches the result (a tf.function, a
    # jitted JAX function, a compiled torch function) on the model; the
    # regularizers are read while tracing, so a cached function would silently
    # keep training with the old penalty. `make_*_function` rebuilds on None.
    # The test function is reset too: `evaluate` reports the regularized loss.
    for name in ("train_function", "test_function"):
        if getattr(model, name, None) is not None:
            setattr(model, name, None)
