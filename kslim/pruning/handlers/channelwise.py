"""Handlers of per-channel layers: BatchNormalization, ChannelMask, activations, pooling, ..."""

import numpy as np

from kslim.pruning.handlers.base import LayerHandler
from kslim.pruning.handlers.producers import activation_name, channels_last

_CHANNEL_MIXING = {"softmax", "log_softmax"}
# Activations with f(0) = 0 (sigmoid, hard_sigmoid, softplus and exponential are not).
_ZERO_AT_ZERO = {"linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "tanh", "silu", "swish",
                 "hard_silu", "hard_swish", "mish", "softsign", "celu"}


def last_axis(layer, rank):
    axis = layer.axis
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            return False
        axis = axis[0]
    return axis in (-1, rank - 1)


class PerChannelHandler(LayerHandler):
    """Passes each channel through on its own; per-channel weights follow the channels.

    Registered for pooling, padding, cropping, upsampling, dropout, noise and
    activation layers; a custom layer such as a per-channel scale
    (`y[..., c] = w[c] * x[..., c]`) needs nothing more. `homogeneous` says
    whether f(c * x) == c * f(x) for c > 0 (used when rebalancing masks).
    """

    def __init__(self, homogeneous=False, keeps_zero=None):
        self._homogeneous = homogeneous
        self._keeps_zero = homogeneous if keeps_zero is None else keeps_zero

    def classify(self, layer, rank):
        if not channels_last(layer):
            return "barrier", f"'{layer.name}' is channels_first"
        return "per_channel", None

    def homogeneous(self, layer):
        return self._homogeneous

    def keeps_zero(self, layer):
        return self._keeps_zero


class ReLUHandler(PerChannelHandler):
    def homogeneous(self, layer):
        return layer.max_value is None and layer.threshold == 0

    def keeps_zero(self, layer):
        return layer.threshold == 0


class ActivationHandler(PerChannelHandler):
    def classify(self, layer, rank):
        act = activation_name(layer) or str(layer.activation)
        if act in _CHANNEL_MIXING:
            return "barrier", f"'{layer.name}' applies {act} across channels"
        return "per_channel", None

    def homogeneous(self, layer):
        return activation_name(layer) in {"linear", "relu", "leaky_relu"}

    def keeps_zero(self, layer):
        return activation_name(layer) in _ZERO_AT_ZERO


class SoftmaxHandler(LayerHandler):
    def classify(self, layer, rank):
        return "barrier", f"'{layer.name}' applies softmax across channels"


class BatchNormalizationHandler(LayerHandler):
    """BN on the channel axis. With `scale=True` its gamma scores each channel."""

    def classify(self, layer, rank):
        if not last_axis(layer, rank):
            return "barrier", f"'{layer.name}' normalises axis {layer.axis}, not the channel axis"
        return ("scale" if layer.scale else "per_channel"), None

    def scaling_factor(self, layer):
        return "gamma" if layer.scale else None


class ChannelMaskHandler(PerChannelHandler):
    """Yang et al.'s trainable per-channel mask: it scores each channel."""

    def classify(self, layer, rank):
        return "scale", None

    def scaling_factor(self, layer):
        return "mask"


class ConfigValuesHandler(PerChannelHandler):
    """A per-channel layer whose config may hold per-channel values (Rescaling, Normalization)."""

    keys = ("scale", "offset", "mean", "variance")

    def classify(self, layer, rank):
        if hasattr(layer, "axis") and not last_axis(layer, rank):
            return "barrier", f"'{layer.name}' normalises axis {layer.axis}, not the channel axis"
        return super().classify(layer, rank)

    def edits_config(self, layer):
        return True

    def edit_config(self, layer, config, out_keep):
        for key in self.keys:
            value = config.get(key)
            if isinstance(value, (list, tuple)) and np.size(value) > 1:
                config[key] = np.take(np.asarray(value), out_keep, axis=-1).tolist()


class LayerScaleHandler(PerChannelHandler):
    """ConvNeXt's `LayerScale`: `x * gamma`, one gamma per channel; its config holds the width."""

    def __init__(self):
        super().__init__(homogeneous=True)

    def edits_config(self, layer):
        return True

    def edit_config(self, layer, config, out_keep):
        config["projection_dim"] = len(out_keep)
