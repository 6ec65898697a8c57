"""The CIFAR VGG of network slimming (VGG-11/13/16/19 with BatchNormalization)."""

import keras

from kslim.models.blocks import batch_norm
from kslim.models.blocks import check_common
from kslim.models.blocks import check_input_shape
from kslim.models.blocks import check_widths
from kslim.models.blocks import conv
from kslim.models.registry import register

# Conv widths per depth; "M" is a 2x2 max pooling that ends a block.
_CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [
        64, 64, "M",
        128, 128, "M",
        256, 256, 256, 256, "M",
        512, 512, 512, 512, "M",
        512, 512, 512, 512,
    ],
}  # fmt: skip


def vgg(depth=19, num_classes=10, input_shape=None, widths=None, gamma_init=0.5, bn_momentum=0.9):
    """The VGG network that network slimming prunes on CIFAR and SVHN.

    Every convolution is 3x3, 'same', without bias, followed by
    BatchNormalization and ReLU; a 2x2 max pooling ends each of the first four
    blocks; then a global average pooling and a single dense classifier
    (512 -> `num_classes`). This is the official code's `vgg`: its
    `AvgPool2d(2)` on the final 2x2 map of a 32x32 input is a global average,
    which we use so that other input sizes keep the same classifier. VGG-19
    has 20.04M trainable parameters and 7.97e8 FLOPs on CIFAR-10.

    Layers are named `block{b}_conv{i}`, `block{b}_bn{i}`, `block{b}_relu{i}`,
    `block{b}_pool`, then `avgpool` and `classifier`. Weights are initialised
    as in the official code (conv: normal with std sqrt(2 / (9 * filters));
    classifier: normal(0, 0.01), zero bias).

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017 (code: Eric-mingjie/network-slimming,
    models/vgg.py); Simonyan and Zisserman, ICLR 2015.

    Args:
        depth: int, 11, 13, 16 or 19.
        num_classes: int, the number of logits.
        input_shape: tuple of int, (height, width, channels), at least 16x16;
            (32, 32, 3) by default.
        widths: list of int, the filters of every convolution in order
            (8, 10, 13 or 16 of them); the official configuration by default
            (VGG-19: [64, 64, 128, 128, 256 x 4, 512 x 8]).
        gamma_init: float, the initial BatchNormalization scale; 0.5, the
            paper's, by default.
        bn_momentum: float, the Keras BatchNormalization momentum (0.9 equals
            PyTorch's default momentum 0.1).

    Returns:
        A functional `keras.Model` named `vgg{depth}` that outputs logits.

    Raises:
        ValueError: if `depth` is not 11, 13, 16 or 19, or an argument is out
            of range (`widths` of the wrong length, a width below 1, ...).
        TypeError: if a width is not an int.

    Example:

    >>> model = vgg(19, num_classes=10)
    >>> slim = vgg(19, widths=[32] * 16)   # a narrower VGG-19
    """
    if depth not in _CFGS:
        raise ValueError(f"vgg: depth must be one of {sorted(_CFGS)}, got {depth!r}.")
    model_name = f"vgg{depth}"
    check_common(model_name, num_classes, gamma_init, bn_momentum)
    input_shape = check_input_shape(model_name, input_shape, (32, 32, 3), min_size=16)

    plan = []  # (block, index in block) of every conv, in order
    block, index = 1, 0
    for item in _CFGS[depth]:
        if item == "M":
            block, index = block + 1, 0
        else:
            index += 1
            plan.append((block, index))
    names = [f"block{b}_conv{i}" for b, i in plan]
    default = [item for item in _CFGS[depth] if item != "M"]
    widths = check_widths(model_name, widths, default, names)

    inputs = keras.Input(input_shape, name="input")
    x = inputs
    convs = iter(zip(widths, plan))
    block = 1
    for item in _CFGS[depth]:
        if item == "M":
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
            block += 1
            continue
        width, (b, i) = next(convs)
        x = conv(width, 3, name=f"block{b}_conv{i}")(x)
        x = batch_norm(f"block{b}_bn{i}", gamma_init, bn_momentum)(x)
        x = keras.layers.ReLU(name=f"block{b}_relu{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    outputs = keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        bias_initializer="zeros",
        name="classifier",
    )(x)
    return keras.Model(inputs, outputs, name=model_name)


@register
def vgg11(num_classes=10, input_shape=None, **kwargs):
    """VGG-11 of network slimming (8 convolutions); see `vgg` for the arguments."""
    return vgg(11, num_classes=num_classes, input_shape=input_shape, **kwargs)


@register
def vgg13(num_classes=10, input_shape=None, **kwargs):
    """VGG-13 of network slimming (10 convolutions); see `vgg` for the arguments."""
    return vgg(13, num_classes=num_classes, input_shape=input_shape, **kwargs)


@register
def vgg16(num_classes=10, input_shape=None, **kwargs):
    """VGG-16 of network slimming (13 convolutions); see `vgg` for the arguments."""
    return vgg(16, num_classes=num_classes, input_shape=input_shape, **kwargs)


@register
def vgg19(num_classes=10, input_shape=None, **kwargs):
    """VGG-19 of network slimming (16 convolutions; 20.04M params, 7.97e8 FLOPs on CIFAR).

    See `vgg` for the arguments.

    Example:

    >>> model = kslim.models.vgg19(num_classes=100)
    """
    return vgg(19, num_classes=num_classes, input_shape=input_shape, **kwargs)
