"""The pre-activation bottleneck ResNet of network slimming (ResNet-164 on CIFAR)."""

import keras

from kslim.models.blocks import batch_norm
from kslim.models.blocks import check_common
from kslim.models.blocks import check_input_shape
from kslim.models.blocks import check_widths
from kslim.models.blocks import conv
from kslim.models.registry import register


def preresnet(
    depth=164, num_classes=10, input_shape=None, widths=None, gamma_init=0.5, bn_momentum=0.9
):
    """A pre-activation ResNet with bottleneck blocks, as network slimming prunes it.

    A 3x3 stem convolution (16 filters), three stages of `n = (depth - 2) / 9`
    bottleneck blocks (planes 16, 32, 64; the second and third stages start
    with stride 2), then BatchNormalization, ReLU, global average pooling and
    a dense classifier. A block is

        BN -> ReLU -> conv1x1(planes) -> BN -> ReLU -> conv3x3(planes, stride)
           -> BN -> ReLU -> conv1x1(4 * planes)   + shortcut

    where the shortcut of each stage's first block is a strided 1x1
    convolution (`downsample`, no BN) of the block's input, and the identity
    otherwise. Convolutions have no bias. Each block's first BatchNormalization
    (`..._bn1`) normalises the shared residual stream: the paper prunes a
    block's input through a channel selection placed after it, so every BN is
    its own named layer. ResNet-164 has 1.70M trainable parameters and 4.99e8
    FLOPs on CIFAR-10.

    Layers are named `stem_conv`, `stage{s}_block{b}_{bn1, relu1, conv1, bn2,
    relu2, conv2, bn3, relu3, conv3, downsample, add}`, then `final_bn`,
    `final_relu`, `avgpool`, `classifier`.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017 (code: Eric-mingjie/network-slimming,
    models/preresnet.py); He et al., "Identity Mappings in Deep Residual
    Networks", ECCV 2016.

    Args:
        depth: int, `9 * n + 2` with n >= 1 (164, 56, 20, ...).
        num_classes: int, the number of logits.
        input_shape: tuple of int, (height, width, channels); (32, 32, 3) by
            default.
        widths: list of `depth - 1` ints: `stem_conv`, then `conv1, conv2,
            conv3` of every block in order (the `downsample` convolution has
            its block's `conv3` width). The `conv3` widths of a stage are added
            together, so they must be equal. Default: `[16] + n * [16, 16, 64]
            + n * [32, 32, 128] + n * [64, 64, 256]`.
        gamma_init: float, the initial BatchNormalization scale; 0.5, the
            paper's, by default.
        bn_momentum: float, the Keras BatchNormalization momentum (0.9 equals
            PyTorch's default momentum 0.1).

    Returns:
        A functional `keras.Model` named `preresnet{depth}` that outputs
        logits.

    Raises:
        ValueError: if `depth` is not `9 * n + 2`, or `widths` has the wrong
            length, a width below 1, or unequal `conv3` widths in a stage.
        TypeError: if a width is not an int.

    Example:

    >>> model = preresnet(164, num_classes=100)
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 11 or (depth - 2) % 9:
        raise ValueError(
            f"preresnet: depth must be 9 * n + 2 with n >= 1 (e.g. 20, 56, 164), got {depth!r}."
        )
    model_name = f"preresnet{depth}"
    check_common(model_name, num_classes, gamma_init, bn_momentum)
    input_shape = check_input_shape(model_name, input_shape, (32, 32, 3))
    n = (depth - 2) // 9

    names, default, ties = ["stem_conv"], [16], []
    for stage, planes in enumerate((16, 32, 64), start=1):
        ties.append([])
        for block in range(1, n + 1):
            for k, width in enumerate((planes, planes, 4 * planes), start=1):
                names.append(f"stage{stage}_block{block}_conv{k}")
                default.append(width)
            ties[-1].append(len(names) - 1)
    widths = check_widths(model_name, widths, default, names, ties)

    def bn_relu(x, prefix, k):
        x = batch_norm(f"{prefix}_bn{k}", gamma_init, bn_momentum)(x)
        return keras.layers.ReLU(name=f"{prefix}_relu{k}")(x)

    inputs = keras.Input(input_shape, name="input")
    x = conv(widths[0], 3, name="stem_conv")(inputs)
    position = 1
    for stage, stride in enumerate((1, 2, 2), start=1):
        for block in range(1, n + 1):
            prefix = f"stage{stage}_block{block}"
            w1, w2, w3 = widths[position : position + 3]
            position += 3
            strides = stride if block == 1 else 1
            out = bn_relu(x, prefix, 1)
            out = conv(w1, 1, name=f"{prefix}_conv1")(out)
            out = bn_relu(out, prefix, 2)
            out = conv(w2, 3, strides=strides, name=f"{prefix}_conv2")(out)
            out = bn_relu(out, prefix, 3)
            out = conv(w3, 1, name=f"{prefix}_conv3")(out)
            if block == 1:
                # On the raw block input, as the official code: the stream changes width here.
                shortcut = conv(w3, 1, strides=strides, name=f"{prefix}_downsample")(x)
            else:
                shortcut = x
            x = keras.layers.Add(name=f"{prefix}_add")([out, shortcut])
    x = batch_norm("final_bn", gamma_init, bn_momentum)(x)
    x = keras.layers.ReLU(name="final_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avgpool")(x)
    outputs = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name=model_name)


@register
def preresnet164(num_classes=10, input_shape=None, **kwargs):
    """Pre-activation ResNet-164 (1.70M params, 4.99e8 FLOPs on CIFAR); see `preresnet`.

    Example:

    >>> model = kslim.models.preresnet164()
    """
    return preresnet(164, num_classes=num_classes, input_shape=input_shape, **kwargs)
