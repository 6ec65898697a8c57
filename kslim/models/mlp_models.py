"""The fully-connected MNIST network of network slimming (784-500-300-10)."""

import keras

from kslim.layers.channel_mask import ChannelMask
from kslim.models.blocks import batch_norm
from kslim.models.blocks import check_common
from kslim.models.blocks import check_input_shape
from kslim.models.blocks import check_widths
from kslim.models.registry import register


@register
def mlp(
    num_classes=10,
    input_shape=None,
    widths=None,
    batchnorm=True,
    channel_masks=False,
    gamma_init=0.5,
    bn_momentum=0.9,
):
    """A multi-layer perceptron for MNIST: flatten -> 500 -> 300 -> `num_classes`.

    Each hidden layer is Dense -> BatchNormalization -> ReLU by default, so
    that network slimming can put its L1 penalty on the BN scales of the
    neurons ("channels" of a dense layer) as the paper does on MNIST; the
    Dense layers before a BN have no bias (the BN's beta replaces it). With
    `batchnorm=False` the hidden layers are Dense (with bias) -> ReLU, and
    `channel_masks=True` then adds a `kslim.layers.ChannelMask` before each
    ReLU (the scaling factors of Yang et al.). With the default widths and BN
    it has 0.547M trainable parameters and 1.09M FLOPs; `widths=[300, 100]`
    gives LeNet-300-100 (0.267M).

    Layers are named `flatten`, `fc{i}`, `fc{i}_bn` or `fc{i}_mask`,
    `fc{i}_relu`, `classifier`.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, section 5 (MNIST).

    Args:
        num_classes: int, the number of logits.
        input_shape: tuple of int, the input shape without the batch axis, of
            any rank (it is flattened); (28, 28, 1) by default.
        widths: list of int, one per hidden Dense layer, in order; its length
            sets the number of hidden layers. [500, 300] by default.
        batchnorm: bool, BatchNormalization after each hidden Dense layer.
        channel_masks: bool, a `ChannelMask` after each hidden Dense layer;
            only with `batchnorm=False` (a BN already scales each neuron).
        gamma_init: float, the initial BN scale (only with `batchnorm=True`);
            0.5, the paper's, by default.
        bn_momentum: float, the Keras BN momentum (0.9 equals PyTorch's 0.1).

    Returns:
        A functional `keras.Model` named `mlp` that outputs logits.

    Raises:
        ValueError: if both `batchnorm` and `channel_masks` are set, if
            `gamma_init` is set without `batchnorm`, or if `widths` is empty
            or has a width below 1.
        TypeError: if a width is not an int.

    Example:

    >>> model = kslim.models.mlp()
    >>> masked = kslim.models.mlp(batchnorm=False, channel_masks=True)
    """
    check_common("mlp", num_classes, gamma_init, bn_momentum)
    if batchnorm and channel_masks:
        raise ValueError(
            "mlp: got batchnorm=True and channel_masks=True; BatchNormalization already gives "
            "every neuron a scaling factor, so set batchnorm=False to use channel masks."
        )
    if not batchnorm and gamma_init != 0.5:
        raise ValueError(
            f"mlp: gamma_init={gamma_init} has no effect with batchnorm=False; "
            "set batchnorm=True or leave gamma_init at its default (0.5)."
        )
    input_shape = check_input_shape("mlp", input_shape, (28, 28, 1), any_rank=True)
    if widths is None:
        widths = [500, 300]
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or len(widths) == 0:
        raise ValueError(
            f"mlp: widths must be a non-empty list of ints, one per hidden layer, got {widths!r}."
        )
    # Any number of hidden layers is allowed, so only the entries are checked.
    names = [f"fc{i}" for i in range(1, len(widths) + 1)]
    widths = check_widths("mlp", widths, list(widths), names)

    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(widths, start=1):
        x = keras.layers.Dense(width, use_bias=not batchnorm, name=f"fc{i}")(x)
        if batchnorm:
            x = batch_norm(f"fc{i}_bn", gamma_init, bn_momentum)(x)
        elif channel_masks:
            x = ChannelMask(name=f"fc{i}_mask")(x)
        x = keras.layers.ReLU(name=f"fc{i}_relu")(x)
    outputs = keras.layers.Dense(num_classes, name="classifier")(x)
    return keras.Model(inputs, outputs, name="mlp")
