"""The CIFAR ResNet of He et al. (ResNet-20/32/56, basic blocks, post-activation)."""

import keras

from kslim.models.blocks import batch_norm
from kslim.models.blocks import check_common
from kslim.models.blocks import check_input_shape
from kslim.models.blocks import check_widths
from kslim.models.blocks import conv
from kslim.models.registry import register


def resnet(
    depth=32, num_classes=10, input_shape=None, widths=None, gamma_init=0.5, bn_momentum=0.9
):
    """The CIFAR ResNet of He et al. with basic blocks (ResNet-32 by default).

    A 3x3 stem convolution (16 filters) -> BN -> ReLU, three stages of
    `n = (depth - 2) / 6` basic blocks (16, 32, 64 filters; the second and
    third stages start with stride 2), global average pooling and a dense
    classifier. A block is conv3x3 -> BN -> ReLU -> conv3x3 -> BN, added to
    the shortcut, then ReLU. Where a stage starts (stride 2, more channels)
    the shortcut is a strided 1x1 convolution and BN ("option B"), since
    option A's zero-padding has no channels to prune; elsewhere it is the
    identity. Convolutions have no bias. ResNet-32 has 0.467M trainable
    parameters (0.46M with option A) and 1.38e8 FLOPs on CIFAR-10.

    Layers are named `stem_{conv, bn, relu}`, `stage{s}_block{b}_{conv1, bn1,
    relu1, conv2, bn2, add, relu2}`, `stage{s}_block1_shortcut_{conv, bn}`,
    then `avgpool`, `classifier`.

    Reference: He et al., "Deep Residual Learning for Image Recognition",
    CVPR 2016, section 4.2; used by Yang et al., "Structured Pruning of
    Convolutional Neural Networks via L1 Regularization", IEEE Access 2019.

    Args:
        depth: int, `6 * n + 2` with n >= 1 (20, 32, 56, 110, ...).
        num_classes: int, the number of logits.
        input_shape: tuple of int, (height, width, channels); (32, 32, 3) by
            default.
        widths: list of `depth - 1` ints: `stem_conv`, then `conv1, conv2` of
            every block in order (a shortcut convolution has its block's
            `conv2` width). Layers added together must have equal widths:
            `stem_conv` and every `conv2` of stage 1; every `conv2` of stage
            2; every `conv2` of stage 3. Default: `[16] + n * [16, 16] +
            n * [32, 32] + n * [64, 64]`.
        gamma_init: float, the initial BatchNormalization scale; 0.5, as in
            the other zoo models, by default.
        bn_momentum: float, the Keras BatchNormalization momentum (0.9 equals
            PyTorch's default momentum 0.1).

    Returns:
        A functional `keras.Model` named `resnet{depth}` that outputs logits.

    Raises:
        ValueError: if `depth` is not `6 * n + 2`, or `widths` has the wrong
            length, a width below 1, or unequal widths where layers are added.
        TypeError: if a width is not an int.

    Example:

    >>> model = resnet(32, num_classes=10)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"resnet: depth must be 6 * n + 2 with n >= 1 (e.g. 20, 32, 56), got {depth!r}."
        )
    model_name = f"resnet{depth}"
    check_common(model_name, num_classes, gamma_init, bn_momentum)
    input_shape = check_input_shape(model_name, input_shape, (32, 32, 3))
    n = (depth - 2) // 6

    names, default, ties = ["stem_conv"], [16], [[0]]
    for stage, planes in enumerate((16, 32, 64), start=1):
        if stage > 1:
            ties.append([])
        for block in range(1, n + 1):
            names += [f"stage{stage}_block{block}_conv1", f"stage{stage}_block{block}_conv2"]
            default += [planes, planes]
            ties[-1].append(len(names) - 1)
    widths = check_widths(model_name, widths, default, names, ties)

    inputs = keras.Input(input_shape, name="input")
    x = conv(widths[0], 3, name="stem_conv")(inputs)
    x = batch_norm("stem_bn", gamma_init, bn_momentum)(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    position = 1
    for stage, stride in enumerate((1, 2, 2), start=1):
        for block in range(1, n + 1):
            prefix = f"stage{stage}_block{block}"
            w1, w2 = widths[position : position + 2]
            position += 2
            strides = stride if block == 1 else 1
            out = conv(w1, 3, strides=strides, name=f"{prefix}_conv1")(x)
            out = batch_norm(f"{prefix}_bn1", gamma_init, bn_momentum)(out)
            out = keras.layers.ReLU(name=f"{prefix}_relu1")(out)
            out = conv(w2, 3, name=f"{prefix}_conv2")(out)
            out = batch_norm(f"{prefix}_bn2", gamma_init, bn_momentum)(out)
            shortcut = x
            if block == 1 and stage > 1:
                shortcut = conv(w2, 1, strides=strides, name=f"{prefix}_shortcut_conv")(x)
                shortcut = batch_norm(f"{prefix}_shortcut_bn", gamma_init, bn_momentum)(shortcut)
            x = keras.layers.Add(name=f"{prefix}_add")([out, shortcut])
            x = keras.layers.ReLU(name=f"{prefix}_relu2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    outputs = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name=model_name)


@register
def resnet32(num_classes=10, input_shape=None, **kwargs):
    """ResNet-32 for CIFAR (0.467M params, 1.38e8 FLOPs); see `resnet` for the arguments.

    Example:

    >>> model = kslim.models.resnet32()
    """
    return resnet(32, num_classes=num_classes, input_shape=input_shape, **kwargs)
