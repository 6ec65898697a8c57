"""`ChannelSelect`: keeps a fixed subset of channels (the paper's channel selection layer)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kslim")
class ChannelSelect(keras.layers.Layer):
    """Gathers the given channels (last axis) of its input, in the given order.

    `kslim.prune` inserts it where a stream that must stay whole (a residual
    sum, a dense concatenation) feeds a consumer whose input channels were
    pruned: the stream keeps all its channels and the consumer reads only the
    ones it kept. It has no weights and lowers to a TFLite `GATHER`.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, section 4.3 (channel selection layer).

    Args:
        indices: list of int, the channels to keep.
        **kwargs: standard layer arguments (`name`, `dtype`, ...).

    Example:

    >>> x = keras.Input((4, 4, 8))
    >>> y = ChannelSelect([0, 2, 5])(x)   # shape (None, 4, 4, 3)
    """

    def __init__(self, indices, **kwargs):
        super().__init__(**kwargs)
        indices = [int(i) for i in indices]
        if not indices:
            raise ValueError(
                f"ChannelSelect '{self.name}' got indices=[]; it must keep at least one channel."
            )
        if min(indices) < 0:
            raise ValueError(
                f"ChannelSelect '{self.name}' got a negative index in indices={indices}; "
                "use channel positions counted from 0."
            )
        self.indices = indices
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and max(self.indices) >= channels:
            raise ValueError(
                f"ChannelSelect '{self.name}' selects channel {max(self.indices)} but its input "
                f"has {channels} channels; the indices must be below {channels}."
            )

    def call(self, inputs):
        return ops.take(inputs, ops.convert_to_tensor(self.indices, dtype="int32"), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (len(self.indices),)

    def get_config(self):
        config = super().get_config()
        config["indices"] = list(self.indices)
        return config
