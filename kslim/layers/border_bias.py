"""`BorderBias`: what removed constant channels added to a zero-padded convolution, position by position."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kslim")
class BorderBias(keras.layers.Layer):
    """Adds `conv(ones, kernel)` to its input: a bias that is exact on zero-padded borders.

    A pruned channel whose scaling factor is zero still emits a constant (BN's
    beta through the activation). A convolution with `padding="same"` that read
    it saw that constant at every tap inside the image and zero in the padding,
    so its contribution is one value in the interior and other values on the
    border. `kslim.prune` puts this layer right after such a convolution: its
    `kernel[..., 0, o]` is the sum over the removed input channels of constant
    x weight, and adding `conv(ones, kernel)` over the convolution's input
    positions (same kernel size, strides, dilation and padding) restores exactly
    what the removed channels added, borders included. It computes one image
    and broadcasts it over the batch; it holds no trainable weight.

    The same holds for a `ZeroPadding` layer followed by a convolution with
    `padding="valid"` (ResNet50V2, KerasHub's ResNet): then `padding` is the
    zero padding's `((before, after), ...)`, and the ones are padded with zeros.

    After a transposed convolution (`transpose=True`), a constant input gives
    an output that varies with the position everywhere, not only on the
    border (periodic with the strides, smaller where fewer taps overlap):
    the layer adds `conv_transpose(ones, kernel)` with the transposed
    convolution's geometry (and `output_padding`), which is exactly what the
    removed constant channels added.

    Args:
        input_spatial: the spatial shape of the convolution's input (static),
            before an explicit zero padding.
        kernel_size, strides, dilation_rate: the convolution's.
        padding: "same", or the explicit zero padding `((before, after), ...)`;
            with `transpose`, the transposed convolution's "same" or "valid".
        transpose: bool, follow a transposed convolution.
        output_padding: the transposed convolution's `output_padding` (None,
            or one int per spatial axis).
        **kwargs: standard layer arguments.
    """

    def __init__(self, input_spatial, kernel_size, strides=1, dilation_rate=1, padding="same", transpose=False,
                 output_padding=None, **kwargs):
        super().__init__(**kwargs)
        rank = len(input_spatial)
        self.transpose = bool(transpose)
        self.output_padding = None if output_padding is None else _tuple(output_padding, rank)
        if self.transpose and padding not in ("same", "valid"):
            raise ValueError(f"BorderBias: a transposed convolution pads 'same' or 'valid', got {padding!r}.")
        self.padding = padding if padding in ("same", "valid") else tuple(tuple(int(v) for v in p) for p in padding)
        self.input_spatial = tuple(int(d) for d in input_spatial)
        self.kernel_size = _tuple(kernel_size, rank)
        self.strides = _tuple(strides, rank)
        self.dilation_rate = _tuple(dilation_rate, rank)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (1, input_shape[-1]), initializer="zeros",
            trainable=False,
        )

    # Set by kslim.export (kslim.deploy.lowering) while it converts: the bias image, computed once, so
    # that the file adds a constant instead of running a convolution of ones on every call.
    constant_image = None

    def bias_image(self, dtype="float32"):
        """The `(1, *output_spatial, channels)` bias this layer adds."""
        ones = ops.ones((1,) + self.input_spatial + (1,), dtype=dtype)
        if self.transpose:  # Keras's transposed kernels are (spatial..., outputs, inputs)
            kernel = ops.transpose(ops.cast(self.kernel, dtype), tuple(range(len(self.kernel_size))) + (-1, -2))
            return ops.conv_transpose(ones, kernel, strides=self.strides, padding=self.padding,
                                      output_padding=self.output_padding, dilation_rate=self.dilation_rate)
        padding = "same"
        if self.padding != "same":
            ones, padding = ops.pad(ones, ((0, 0),) + self.padding + ((0, 0),)), "valid"
        return ops.conv(ones, ops.cast(self.kernel, dtype), strides=self.strides, padding=padding,
                        dilation_rate=self.dilation_rate)

    def call(self, inputs):
        if self.constant_image is not None:
            return inputs + ops.cast(self.constant_image, inputs.dtype)
        return inputs + self.bias_image(inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(input_spatial=list(self.input_spatial), kernel_size=list(self.kernel_size),
                      strides=list(self.strides), dilation_rate=list(self.dilation_rate),
                      padding=self.padding if self.padding in ("same", "valid") else [list(p) for p in self.padding])
        if self.transpose:  # only then, so that a file of an earlier kslim has the same config
            config.update(transpose=True,
                          output_padding=None if self.output_padding is None else list(self.output_padding))
        return config


def _tuple(value, rank):
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * rank
