"""The model zoo: the papers' architectures as builder functions, and their registry.

Every builder returns a functional `keras.Model` with deterministic, readable
layer names (`block3_conv2`, `stage2_block4_bn1`) that outputs logits (no
softmax: compile with `from_logits=True`). Every builder takes `widths`, the
channel count of each channel-producing layer in a documented order, so a
slimmed model is the same builder with smaller widths.

Example:

>>> kslim.models.list_models()
['densenet40', 'lenet5', 'lenet5_caffe', 'mlp', 'preresnet164', 'resnet32', 'vgg11', ...]
>>> model = kslim.models.get("vgg19", num_classes=100, gamma_init=0.5)
"""

import numbers

import keras

_REGISTRY = {}


def register(fn=None, *, name=None):
    """Adds a model builder to the registry, under its function name or `name`.

    Use it as a decorator on a function `fn(num_classes=10, input_shape=None,
    **kwargs)` that returns a `keras.Model`; `get` then builds it by name.

    Args:
        fn: the builder function.
        name: str, the registry name; the function's `__name__` by default.

    Returns:
        `fn`, unchanged (or a decorator, when called with only `name`).

    Raises:
        ValueError: if the name is already registered.

    Example:

    >>> @kslim.models.register
    ... def tiny(num_classes=10, input_shape=None):
    ...     ...
    """
    if fn is None:
        return lambda f: register(f, name=name)
    key = name or fn.__name__
    if key in _REGISTRY:
        raise ValueError(
            f"A model named '{key}' is already registered (by {_REGISTRY[key].__module__}); "
            "register yours under another name with register(fn, name=...)."
        )
    _REGISTRY[key] = fn
    return fn


def list_models():
    """Returns the sorted names of all registered models.

    Example:

    >>> "vgg19" in kslim.models.list_models()
    True
    """
    return sorted(_REGISTRY)


def get(name, num_classes=10, input_shape=None, **kwargs):
    """Builds a registered model by name.

    Args:
        name: str, a name from `list_models()` (`"vgg19"`, `"preresnet164"`,
            `"densenet40"`, `"resnet32"`, `"lenet5"`, `"lenet5_caffe"`,
            `"mlp"`, ...).
        num_classes: int, the number of logits.
        input_shape: tuple of int, the input shape without the batch axis;
            the model's default (CIFAR `(32, 32, 3)`, MNIST `(28, 28, 1)`)
            when None.
        **kwargs: the builder's own arguments (`widths`, `gamma_init`,
            `bn_momentum`, ...).

    Returns:
        A new `keras.Model`.

    Raises:
        ValueError: if `name` is not registered.

    Example:

    >>> model = kslim.models.get("vgg19", num_classes=10, gamma_init=0.5)
    """
    if name not in _REGISTRY:
        raise ValueError(
            f"Unknown model name {name!r}; the registered models are: "
            f"{', '.join(list_models())}."
        )
    return _REGISTRY[name](num_classes=num_classes, input_shape=input_shape, **kwargs)


# Helpers shared by the builders.


def _check_common(model_name, num_classes, gamma_init=1.0, bn_momentum=0.9):
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, numbers.Integral)
        or num_classes < 1
    ):
        raise ValueError(f"{model_name}: num_classes must be a positive int, got {num_classes!r}.")
    if isinstance(gamma_init, bool) or not isinstance(gamma_init, numbers.Real):
        raise TypeError(
            f"{model_name}: gamma_init must be a float (the paper uses 0.5), got {gamma_init!r}."
        )
    if (
        isinstance(bn_momentum, bool)
        or not isinstance(bn_momentum, numbers.Real)
        or not 0 <= bn_momentum < 1
    ):
        raise ValueError(
            f"{model_name}: bn_momentum must be a float in [0, 1), got {bn_momentum!r}; Keras's "
            "momentum is 1 - PyTorch's, so PyTorch's default 0.1 is bn_momentum=0.9."
        )


def _check_input_shape(model_name, input_shape, default, min_size=1, any_rank=False):
    """Returns `input_shape` as a tuple of ints, `default` when None.

    The shape must have the rank of `default` (any rank with `any_rank`), and
    an image shape a height and width of at least `min_size`.
    """
    if input_shape is None:
        return tuple(default)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    rank = len(shape) if any_rank and shape else len(default)
    if (
        shape is None
        or len(shape) != rank
        or any(isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in shape)
    ):
        raise ValueError(
            f"{model_name}: input_shape must be {len(default)} positive ints without the batch "
            f"axis, e.g. {tuple(default)}, got {input_shape!r}."
        )
    if not any_rank and rank == 3 and min(shape[:2]) < min_size:
        raise ValueError(
            f"{model_name}: input_shape={shape} is too small; its height and width must be at "
            f"least {min_size} for the model's downsampling."
        )
    return tuple(int(d) for d in shape)


def _check_widths(model_name, widths, default, layer_names, ties=()):
    """Validates `widths` against the layers they set; returns a list of ints.

    Args:
        widths: None (the defaults) or a sequence of positive ints.
        default: list of int, the default widths.
        layer_names: list of str, the layer each width sets, for error messages.
        ties: groups of positions whose widths must be equal (layers summed
            together), each as a list of indices.
    """
    if widths is None:
        return list(default)
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
        raise TypeError(
            f"{model_name}: widths must be a list of {len(default)} ints, got "
            f"{type(widths).__name__} {widths!r}."
        )
    widths = list(widths)
    if len(widths) != len(default):
        raise ValueError(
            f"{model_name}: widths must have {len(default)} entries, one per layer in the order "
            f"{_order(layer_names)}; got {len(widths)} entries: {widths}. "
            f"The defaults are {default}."
        )
    for i, (width, layer) in enumerate(zip(widths, layer_names)):
        if isinstance(width, bool) or not isinstance(width, numbers.Integral):
            raise TypeError(
                f"{model_name}: widths[{i}] (layer '{layer}') must be an int, got {width!r}."
            )
        if width < 1:
            raise ValueError(
                f"{model_name}: widths[{i}] (layer '{layer}') must be at least 1, got {width}; "
                "every layer needs a channel."
            )
    for group in ties:
        first = group[0]
        for i in group[1:]:
            if widths[i] != widths[first]:
                raise ValueError(
                    f"{model_name}: widths[{i}]={widths[i]} (layer '{layer_names[i]}') must equal "
                    f"widths[{first}]={widths[first]} (layer '{layer_names[first]}'): their "
                    "outputs are added together, so they must have the same number of channels."
                )
    return [int(w) for w in widths]


def _order(names):
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, ..., {names[-1]}"


def _batch_norm(name, gamma_init, bn_momentum):
    # epsilon=1e-5 as PyTorch, whose reference code the papers' numbers come from.
    return keras.layers.BatchNormalization(
        momentum=bn_momentum,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.Constant(float(gamma_init)),
        name=name,
    )


def _conv_initializer():
    # normal(0, sqrt(2 / (k * k * out_channels))), the init of the official slimming code.
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def _conv(filters, kernel_size, name, strides=1):
    """A bias-free 'same' convolution: a BatchNormalization follows it, or a normalised sum."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=_conv_initializer(),
        name=name,
    )


from kslim.models.densenet import densenet as densenet  # noqa: E402
from kslim.models.densenet import densenet40 as densenet40  # noqa: E402
from kslim.models.lenet import lenet5 as lenet5  # noqa: E402
from kslim.models.lenet import lenet5_caffe as lenet5_caffe  # noqa: E402
from kslim.models.mlp import mlp as mlp  # noqa: E402
from kslim.models.preresnet import preresnet as preresnet  # noqa: E402
from kslim.models.preresnet import preresnet164 as preresnet164  # noqa: E402
from kslim.models.resnet import resnet as resnet  # noqa: E402
from kslim.models.resnet import resnet32 as resnet32  # noqa: E402
from kslim.models.vgg import vgg as vgg  # noqa: E402
from kslim.models.vgg import vgg11 as vgg11  # noqa: E402
from kslim.models.vgg import vgg13 as vgg13  # noqa: E402
from kslim.models.vgg import vgg16 as vgg16  # noqa: E402
from kslim.models.vgg import vgg19 as vgg19  # noqa: E402
