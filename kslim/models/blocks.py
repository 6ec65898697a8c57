"""What the zoo's builders share: argument checks, BatchNormalization and the conv initializer."""

import numbers

import keras


def check_common(model_name, num_classes, gamma_init=0.5, bn_momentum=0.9):
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


def check_input_shape(model_name, input_shape, default, min_size=1, any_rank=False):
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


def check_widths(model_name, widths, default, layer_names, ties=()):
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
            f"{order(layer_names)}; got {len(widths)} entries: {widths}. "
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


def order(names):
    return ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]}, ..., {names[-1]}"


def batch_norm(name, gamma_init, bn_momentum):
    # epsilon=1e-5 as PyTorch, whose reference code the papers' numbers come from.
    return keras.layers.BatchNormalization(
        momentum=bn_momentum,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.Constant(float(gamma_init)),
        name=name,
    )


def conv_initializer():
    # normal(0, sqrt(2 / (k * k * out_channels))), the init of the official slimming code.
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_out", distribution="untruncated_normal"
    )


def conv(filters, kernel_size, name, strides=1):
    """A bias-free 'same' convolution: a BatchNormalization follows it, or a normalised sum."""
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer=conv_initializer(),
        name=name,
    )
