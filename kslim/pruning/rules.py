"""What kslim knows about each Keras layer: its role in the channel graph and how to slice it.

Roles:
    "producer"     makes new channels (Conv*, Dense, SeparableConv*, Conv*Transpose).
    "scale"        a per-channel layer with a scaling factor (BN with scale=True, ChannelMask).
    "per_channel"  passes channels through, maybe with per-channel weights.
    "merge"        ties the channels of its inputs (Add, Subtract, Average, Maximum, Minimum).
    "multiply"     like "merge", but a zero in any input zeroes the output (Multiply).
    "concat"       concatenates its inputs' channels.
    "flatten"      unrolls (spatial, channel) into features.
    "barrier"      anything else: its input channels are kept, its outputs are new.
"""

import numpy as np
import keras

from kslim.layers.channel_mask import ChannelMask
from kslim.layers.channel_select import ChannelSelect

L = keras.layers

_CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
_TRANSPOSE = (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)
_SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
_DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
_MERGE = (L.Add, L.Subtract, L.Average, L.Maximum, L.Minimum)
# Per-channel spatial layers: pooling, padding, cropping, upsampling.
_SPATIAL = (
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
    L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
    L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
    L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
    L.Cropping1D, L.Cropping2D, L.Cropping3D,
    L.UpSampling1D, L.UpSampling2D, L.UpSampling3D,
)
_DROPOUT = (
    L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianDropout,
)
_PASS = (
    L.ReLU, L.LeakyReLU, L.ELU, L.GaussianNoise, L.AlphaDropout, L.ActivityRegularization,
    L.Identity, L.PReLU, L.Rescaling, L.Normalization,
) + _DROPOUT + _SPATIAL
# Activations that mix channels.
_CHANNEL_MIXING = {"softmax", "log_softmax"}


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _last_axis(layer, rank):
    axis = layer.axis
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis in (-1, rank - 1)


def role(op, rank, n_calls):
    """Returns `(role, reason)`; `reason` explains a barrier, else is None.

    Args:
        op: the layer or operation of a node.
        rank: rank of the node's first input tensor.
        n_calls: how many times the layer is called in the model.
    """
    name = type(op).__name__
    if not isinstance(op, L.Layer):
        return "barrier", f"operation '{op.name}' ({name}) is not a layer kslim understands"
    if isinstance(op, keras.Model):
        return "barrier", f"nested model '{op.name}' is kept whole"
    if n_calls > 1:
        return "barrier", f"layer '{op.name}' is shared by {n_calls} calls"
    if isinstance(op, _CONV):
        if op.groups != 1 or not _channels_last(op):
            return "barrier", f"'{op.name}' is a grouped or channels_first convolution"
        return "producer", None
    if isinstance(op, _TRANSPOSE + _SEPARABLE + (L.Dense,)):
        if not _channels_last(op):
            return "barrier", f"'{op.name}' is channels_first"
        return "producer", None
    if isinstance(op, _DEPTHWISE):
        if op.depth_multiplier != 1 or not _channels_last(op):
            return "barrier", f"'{op.name}' has depth_multiplier={op.depth_multiplier}"
        return "per_channel", None
    if isinstance(op, L.BatchNormalization):
        if not _last_axis(op, rank):
            return "barrier", f"'{op.name}' normalises axis {op.axis}, not the channel axis"
        return ("scale" if op.scale else "per_channel"), None
    if isinstance(op, ChannelMask):
        return "scale", None
    if isinstance(op, ChannelSelect):
        return "barrier", f"'{op.name}' is an earlier channel selection"
    if isinstance(op, L.Activation):
        act = getattr(op.activation, "__name__", str(op.activation))
        if act in _CHANNEL_MIXING:
            return "barrier", f"'{op.name}' applies {act} across channels"
        return "per_channel", None
    if isinstance(op, L.Softmax):
        return "barrier", f"'{op.name}' applies softmax across channels"
    if isinstance(op, _PASS):
        if not _channels_last(op):
            return "barrier", f"'{op.name}' is channels_first"
        if isinstance(op, L.Normalization) and not _last_axis(op, rank):
            return "barrier", f"'{op.name}' normalises axis {op.axis}, not the channel axis"
        return "per_channel", None
    if isinstance(op, L.Multiply):
        return "multiply", None
    if isinstance(op, _MERGE):
        return "merge", None
    if isinstance(op, L.Concatenate):
        return ("concat" if op.axis in (-1, rank - 1) else "merge"), None
    if isinstance(op, L.Flatten):
        if not _channels_last(op):
            return "barrier", f"'{op.name}' is channels_first"
        return "flatten", None
    if isinstance(op, L.Reshape):
        return "reshape", None
    return "barrier", f"kslim does not know how '{op.name}' ({name}) treats channels"


def weight_axes(layer, shapes):
    """Which axis of each weight follows the input or output channels.

    Args:
        layer: the original layer.
        shapes: the shapes of its weights, in `layer.weights` order.

    Returns:
        One dict per weight, `{axis: "in" | "out" | "in_expanded"}`
        ("in_expanded": input channel i owns entries i*m .. i*m+m-1, the
        pointwise kernel of a separable convolution with depth multiplier m).
    """
    if isinstance(layer, _CONV + (L.Dense,)):
        return [{-2: "in", -1: "out"}] + [{-1: "out"}] * (len(shapes) - 1)
    if isinstance(layer, _TRANSPOSE):
        return [{-1: "in", -2: "out"}] + [{-1: "out"}] * (len(shapes) - 1)
    if isinstance(layer, _SEPARABLE):
        return [{-2: "in"}, {-2: "in_expanded", -1: "out"}] + [{-1: "out"}] * (len(shapes) - 2)
    if isinstance(layer, _DEPTHWISE):
        return [{-2: "out"}] + [{-1: "out"}] * (len(shapes) - 1)
    channels = layer.input.shape[-1]
    # Per-channel layers: every weight whose last axis is the channel axis follows it.
    return [
        {-1: "out"} if len(s) and s[-1] == channels and channels != 1 else {} for s in shapes
    ]


def _expand(keep, multiplier):
    return [i * multiplier + k for i in keep for k in range(multiplier)]


def slice_weights(layer, weights, in_keep, out_keep):
    """Slices a layer's weights to the kept input and output channels.

    Args:
        layer: the original layer.
        weights: its weights as NumPy arrays, in `layer.weights` order.
        in_keep: kept input channel positions, or None for all.
        out_keep: kept output channel positions, or None for all.

    Returns:
        The list of sliced NumPy arrays.
    """
    multiplier = getattr(layer, "depth_multiplier", 1)
    keeps = {
        "in": in_keep,
        "out": out_keep,
        "in_expanded": None if in_keep is None else _expand(in_keep, multiplier),
    }
    out = []
    for w, axes in zip(weights, weight_axes(layer, [w.shape for w in weights])):
        for axis, which in axes.items():
            if keeps[which] is not None:
                w = np.take(w, keeps[which], axis=axis)
        out.append(w)
    return out


def count_params(layer, n_in, n_out):
    """Number of parameters of `layer` with `n_in` input and `n_out` output channels."""
    multiplier = getattr(layer, "depth_multiplier", 1)
    sizes = {"in": n_in, "out": n_out, "in_expanded": n_in * multiplier}
    shapes = [tuple(w.shape) for w in layer.weights]
    total = 0
    for shape, axes in zip(shapes, weight_axes(layer, shapes)):
        dims = list(shape)
        for axis, which in axes.items():
            dims[axis] = sizes[which]
        total += int(np.prod(dims, dtype=np.int64))
    return total


def edits_config(layer):
    """Whether a per-channel layer's config holds per-channel values to slice."""
    return isinstance(layer, (L.Rescaling, L.Normalization, L.Reshape))


def edit_config(layer, config, out_keep):
    """Edits a layer config in place for a new output width (`filters`, `units`, ...)."""
    if out_keep is None:
        return
    n = len(out_keep)
    if "filters" in config and isinstance(layer, _CONV + _TRANSPOSE + _SEPARABLE):
        config["filters"] = n
    elif "units" in config and isinstance(layer, L.Dense):
        config["units"] = n
    elif isinstance(layer, L.Reshape):
        config["target_shape"] = list(config["target_shape"][:-1]) + [n]
    elif isinstance(layer, (L.Rescaling, L.Normalization)):
        for key in ("scale", "offset", "mean", "variance"):
            value = config.get(key)
            if isinstance(value, (list, tuple)) and np.size(value) > 1:
                config[key] = np.take(np.asarray(value), out_keep, axis=-1).tolist()


def count_flops(layer, n_in, n_out):
    """FLOPs (2 x multiply-accumulates, as `kslim.profile` counts) of one call of
    `layer` with `n_in` input and `n_out` output channels, at batch size 1."""
    from kslim.profile import layer_macs

    if not isinstance(layer, _CONV + _TRANSPOSE + _SEPARABLE + _DEPTHWISE + (L.Dense,)):
        return 0
    x = tuple(layer.input.shape[:-1]) + (n_in,)
    y = tuple(layer.output.shape[:-1]) + (n_out,)
    if isinstance(layer, _DEPTHWISE):
        x = x[:-1] + (n_out,)
    return 2 * layer_macs(layer, x, y)
