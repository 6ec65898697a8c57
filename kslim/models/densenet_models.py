"""The DenseNet of network slimming (DenseNet-40, growth rate 12, on CIFAR)."""

import keras

from kslim.models.blocks import batch_norm
from kslim.models.blocks import check_common
from kslim.models.blocks import check_input_shape
from kslim.models.blocks import check_widths
from kslim.models.blocks import conv
from kslim.models.registry import register


def densenet(
    depth=40, num_classes=10, input_shape=None, widths=None, gamma_init=0.5, bn_momentum=0.9
):
    """A DenseNet without bottlenecks or compression, as network slimming prunes it.

    A 3x3 stem convolution (16 filters), three dense blocks of
    `n = (depth - 4) / 3` layers each, with a transition between blocks, then
    BatchNormalization, ReLU, global average pooling and a dense classifier.
    A dense layer is BN -> ReLU -> conv3x3(growth rate 12) whose output is
    concatenated to its input; a transition is BN -> ReLU -> conv1x1 (as many
    filters as its input has channels) -> 2x2 average pooling. Convolutions
    have no bias. Each BatchNormalization normalises the concatenated stream,
    which the paper keeps whole and prunes through a channel selection after
    the BN. DenseNet-40 has 1.02M trainable parameters and 5.30e8 FLOPs on
    CIFAR-10 (the paper: 1.02M, 5.33e8).

    The paper and its Table 1 use 16 initial channels; the official code's
    default is 2 x growth rate = 24, which gives 1.06M parameters instead.
    Pass `widths` with 24 first (and 168, 312 for the transitions) for that
    variant.

    Layers are named `stem_conv`, `block{b}_layer{l}_{bn, relu, conv,
    concat}`, `transition{t}_{bn, relu, conv, pool}`, then `final_bn`,
    `final_relu`, `avgpool`, `classifier`.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017 (code: Eric-mingjie/network-slimming,
    models/densenet.py); Huang et al., "Densely Connected Convolutional
    Networks", CVPR 2017.

    Args:
        depth: int, `3 * n + 4` with n >= 1 (40, 100, ...).
        num_classes: int, the number of logits.
        input_shape: tuple of int, (height, width, channels), at least 4x4;
            (32, 32, 3) by default.
        widths: list of `depth - 1` ints: `stem_conv`, the n convolutions of
            block 1, `transition1_conv`, the n of block 2,
            `transition2_conv`, the n of block 3. Default (DenseNet-40):
            `[16] + 12 * [12] + [160] + 12 * [12] + [304] + 12 * [12]`.
        gamma_init: float, the initial BatchNormalization scale; 0.5, the
            paper's, by default.
        bn_momentum: float, the Keras BatchNormalization momentum (0.9 equals
            PyTorch's default momentum 0.1).

    Returns:
        A functional `keras.Model` named `densenet{depth}` that outputs
        logits.

    Raises:
        ValueError: if `depth` is not `3 * n + 4`, or `widths` has the wrong
            length or a width below 1.
        TypeError: if a width is not an int.

    Example:

    >>> model = densenet(40, num_classes=10)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 7 or (depth - 4) % 3:
        raise ValueError(f"densenet: depth must be 3 * n + 4 with n >= 1 (e.g. 40), got {depth!r}.")
    model_name = f"densenet{depth}"
    check_common(model_name, num_classes, gamma_init, bn_momentum)
    input_shape = check_input_shape(model_name, input_shape, (32, 32, 3), min_size=4)
    n = (depth - 4) // 3
    growth = 12

    names, default = ["stem_conv"], [16]
    channels = 16
    for block in range(1, 4):
        names += [f"block{block}_layer{layer}_conv" for layer in range(1, n + 1)]
        default += [growth] * n
        channels += growth * n
        if block < 3:
            names.append(f"transition{block}_conv")
            default.append(channels)
    widths = check_widths(model_name, widths, default, names)

    def bn_relu(x, prefix):
        x = batch_norm(f"{prefix}_bn", gamma_init, bn_momentum)(x)
        return keras.layers.ReLU(name=f"{prefix}_relu")(x)

    inputs = keras.Input(input_shape, name="input")
    x = conv(widths[0], 3, name="stem_conv")(inputs)
    remaining = iter(widths[1:])
    for block in range(1, 4):
        for layer in range(1, n + 1):
            prefix = f"block{block}_layer{layer}"
            out = bn_relu(x, prefix)
            out = conv(next(remaining), 3, name=f"{prefix}_conv")(out)
            x = keras.layers.Concatenate(name=f"{prefix}_concat")([x, out])
        if block < 3:
            prefix = f"transition{block}"
            x = bn_relu(x, prefix)
            x = conv(next(remaining), 1, name=f"{prefix}_conv")(x)
            x = keras.layers.AveragePooling2D(2, name=f"{prefix}_pool")(x)
    x = batch_norm("final_bn", gamma_init, bn_momentum)(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    outputs = keras.layers.Dense(num_classes, bias_initializer="zeros", name="classifier")(x)
    return keras.Model(inputs, outputs, name=model_name)


@register
def densenet40(num_classes=10, input_shape=None, **kwargs):
    """DenseNet-40, growth rate 12, 16 initial channels (1.02M params, 5.30e8 FLOPs on CIFAR).

    See `densenet` for the arguments.

    Example:

    >>> model = kslim.models.densenet40()
    """
    return densenet(40, num_classes=num_classes, input_shape=input_shape, **kwargs)
