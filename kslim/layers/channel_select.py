"""`ChannelSelect`: keeps a fixed subset of channels (the paper's channel selection layer)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kslim")
class ChannelSelect(keras.layers.Layer):
    """Gathers the given channels (last axis) of its input, in the given order.

    `kslim.prune` inserts it where a stream that must stay whole (a residual
    sum, a dense concatenation) feeds a consumer whose input channels were
    pruned: the stream keeps all its channels and the consumer reads only the
    ones it kept. It has no weights. In Keras it is one gather; `kslim.export`
    writes it as static slices of its runs of consecutive channels and one
    concatenation, which LiteRT's XNNPACK delegate runs (it has no GATHER).

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

    # Set by kslim.export while it traces the model: TFLite's GATHER runs outside LiteRT's XNNPACK
    # delegate (and the GPU delegate rejects it), while static slices and a concatenation run in it.
    lower_to_slices = False

    def call(self, inputs):
        if self.lower_to_slices:
            parts = [inputs[..., start:stop] for start, stop in runs(self.indices)]
            while len(parts) > 1:  # XNNPACK concatenates at most 4 tensors in one op
                parts = [
                    ops.concatenate(parts[i : i + 4], axis=-1) if len(parts[i : i + 4]) > 1 else parts[i]
                    for i in range(0, len(parts), 4)
                ]
            return parts[0]
        return ops.take(inputs, ops.convert_to_tensor(self.indices, dtype="int32"), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (len(self.indices),)

    def get_config(self):
        config = super().get_config()
        config["indices"] = list(self.indices)
        return config


def runs(indices):
    """The `[start, stop)` ranges of consecutive channels that make up `indices`, in order.

    Example:

    >>> runs([0, 1, 2, 5, 6, 9])
    [(0, 3), (5, 7), (9, 10)]
    """
    out = []
    for i in indices:
        if out and i == out[-1][1]:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out
