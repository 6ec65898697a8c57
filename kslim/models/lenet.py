"""LeNet-5 for MNIST, classic and Caffe's, the networks Yang et al. prune with channel masks."""

import keras

from kslim.layers.channel_mask import ChannelMask
from kslim.models.blocks import check_common
from kslim.models.blocks import check_input_shape
from kslim.models.blocks import check_widths
from kslim.models.registry import register


# Without BatchNormalization both LeNets diverge at the paper's lr 0.1 (NaN loss on MNIST, seeds 0 and
# 1; benchmarks/mnist_paper.py trains them at 0.01).
@register(recipe={"lr": 0.01})
def lenet5(num_classes=10, input_shape=None, widths=None, channel_masks=False):
    """LeNet-5 (6-16-120-84) for 28x28 MNIST digits, with biases and no BatchNormalization.

    conv5x5(6, 'same') -> ReLU -> maxpool 2 -> conv5x5(16, 'valid') -> ReLU ->
    maxpool 2 -> flatten -> dense 120 -> ReLU -> dense 84 -> ReLU -> dense
    `num_classes`. The 'same' first convolution on 28x28 is the classic
    LeNet-5 on 32x32 (16 x 5 x 5 features into the first dense layer): 61.7K
    parameters, 0.83M FLOPs. This is not Caffe's "LeNet" (20-50-500), which
    has one hidden dense layer.

    Having no BatchNormalization, it has no scaling factors to slim; with
    `channel_masks=True` a `kslim.layers.ChannelMask` follows every
    convolution and hidden dense layer (before its ReLU), the trainable
    per-channel mask that Yang et al. penalise with L1 (they remove 88.8% of
    the parameters without accuracy loss).

    Layers are named `conv1`, `conv1_mask`, `conv1_relu`, `pool1`, `conv2`,
    ..., `pool2`, `flatten`, `fc1`, `fc1_mask`, `fc1_relu`, `fc2`, ...,
    `classifier`.

    Reference: Yang et al., "Structured Pruning of Convolutional Neural
    Networks via L1 Regularization", IEEE Access 2019; LeCun et al.,
    "Gradient-Based Learning Applied to Document Recognition", Proc. IEEE
    1998.

    Args:
        num_classes: int, the number of logits.
        input_shape: tuple of int, (height, width, channels), at least
            12x12; (28, 28, 1) by default.
        widths: list of 4 ints, the widths of `conv1`, `conv2`, `fc1`, `fc2`;
            [6, 16, 120, 84] by default.
        channel_masks: bool, whether to add a `ChannelMask` after `conv1`,
            `conv2`, `fc1` and `fc2`.

    Returns:
        A functional `keras.Model` named `lenet5` that outputs logits.

    Raises:
        ValueError: if `widths` has the wrong length or a width below 1, or
            `input_shape` is too small.
        TypeError: if a width is not an int.

    Example:

    >>> model = kslim.models.lenet5(channel_masks=True)
    """
    check_common("lenet5", num_classes)
    input_shape = check_input_shape("lenet5", input_shape, (28, 28, 1), min_size=12)
    names = ["conv1", "conv2", "fc1", "fc2"]
    widths = check_widths("lenet5", widths, [6, 16, 120, 84], names)
    return _lenet("lenet5", num_classes, input_shape, names, widths, "same", channel_masks)


@register(recipe={"lr": 0.01})
def lenet5_caffe(num_classes=10, input_shape=None, widths=None, channel_masks=False):
    """LeNet-5-Caffe (20-50-500), the LeNet of the pruning literature, for 28x28 MNIST digits.

    conv5x5(20) -> ReLU -> maxpool 2 -> conv5x5(50) -> ReLU -> maxpool 2 ->
    flatten (4 x 4 x 50 = 800) -> dense 500 -> ReLU -> dense `num_classes`;
    'valid' convolutions, biases, no BatchNormalization: 431.1K parameters,
    4.59M FLOPs. This is Caffe's MNIST example network with a ReLU after each
    convolution, as "LeNet-5" is used by most pruning papers on MNIST (Han et
    al. 2015, Wen et al. 2016, Louizos et al. 2018, "LeNet-5-Caffe"). Seven
    times the parameters of the classic `lenet5`, nearly all (93%) in `fc1`.

    With `channel_masks=True` a `kslim.layers.ChannelMask` follows `conv1`,
    `conv2` and `fc1` (before the ReLU), the masks Yang et al. penalise
    with L1.

    Layers are named `conv1`, `conv1_mask`, `conv1_relu`, `pool1`, `conv2`,
    ..., `pool2`, `flatten`, `fc1`, `fc1_mask`, `fc1_relu`, `classifier`.

    Reference: Yang et al., "Structured Pruning of Convolutional Neural
    Networks via L1 Regularization", IEEE Access 2019; Jia et al., "Caffe:
    Convolutional Architecture for Fast Feature Embedding", 2014 (the
    `examples/mnist` LeNet).

    Args:
        num_classes: int, the number of logits.
        input_shape: tuple of int, (height, width, channels), at least
            16x16; (28, 28, 1) by default.
        widths: list of 3 ints, the widths of `conv1`, `conv2`, `fc1`;
            [20, 50, 500] by default.
        channel_masks: bool, whether to add a `ChannelMask` after `conv1`,
            `conv2` and `fc1`.

    Returns:
        A functional `keras.Model` named `lenet5_caffe` that outputs logits.

    Raises:
        ValueError: if `widths` has the wrong length or a width below 1, or
            `input_shape` is too small.
        TypeError: if a width is not an int.

    Example:

    >>> model = kslim.models.get("lenet5_caffe", channel_masks=True)
    """
    check_common("lenet5_caffe", num_classes)
    input_shape = check_input_shape("lenet5_caffe", input_shape, (28, 28, 1), min_size=16)
    names = ["conv1", "conv2", "fc1"]
    widths = check_widths("lenet5_caffe", widths, [20, 50, 500], names)
    return _lenet("lenet5_caffe", num_classes, input_shape, names, widths, "valid", channel_masks)


def _lenet(model_name, num_classes, input_shape, names, widths, conv1_padding, channel_masks):
    """Two 5x5 convolutions with 2x2 max pooling, then hidden dense layers, then the logits."""

    def mask_relu(x, name):
        if channel_masks:
            x = ChannelMask(name=f"{name}_mask")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x)

    inputs = keras.Input(input_shape, name="input")
    x = inputs
    for i, (name, width) in enumerate(zip(names[:2], widths[:2])):
        padding = conv1_padding if i == 0 else "valid"
        x = mask_relu(keras.layers.Conv2D(width, 5, padding=padding, name=name)(x), name)
        x = keras.layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for name, width in zip(names[2:], widths[2:]):
        x = mask_relu(keras.layers.Dense(width, name=name)(x), name)
    outputs = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name=model_name)
