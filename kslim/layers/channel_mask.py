"""`ChannelMask`: a trainable per-channel scaling factor for layers without BatchNormalization."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kslim")
class ChannelMask(keras.layers.Layer):
    """Multiplies each channel (last axis) of its input by a trainable scalar.

    Use it after a convolution or dense layer that has no BatchNormalization
    after it (LeNet-5, an MLP), so that the layer's channels get a scaling
    factor that a sparsity penalty can drive to zero. `kslim.attach` puts the
    penalty on `mask`; `kslim.prune` folds the mask into the preceding weights,
    so a pruned model contains no `ChannelMask`.

    Reference: Yang et al., "Structured Pruning of Convolutional
    Neural Networks via L1 Regularization", IEEE Access 2019.

    Args:
        mask_initializer: initializer of the mask; ones by default, as in the
            paper, so a new mask leaves its input unchanged.
        mask_regularizer: optional regularizer of the mask (what
            `kslim.attach` sets).
        **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Example:

    >>> x = keras.Input((8,))
    >>> y = ChannelMask()(keras.layers.Dense(4)(x))
    """

    def __init__(self, mask_initializer="ones", mask_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.mask_initializer = keras.initializers.get(mask_initializer)
        self.mask_regularizer = keras.regularizers.get(mask_regularizer)
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"ChannelMask '{self.name}' needs a known channel count (last axis), "
                f"got input shape {input_shape}; give the model a fixed number of channels."
            )
        self.mask = self.add_weight(
            name="mask",
            shape=(channels,),
            initializer=self.mask_initializer,
            regularizer=self.mask_regularizer,
            trainable=True,
        )

    def call(self, inputs):
        return inputs * ops.cast(self.mask, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "mask_initializer": keras.initializers.serialize(self.mask_initializer),
                "mask_regularizer": keras.regularizers.serialize(self.mask_regularizer),
            }
        )
        return config
