"""Handlers of the layers that make channels: convolutions and Dense."""

import math

import numpy as np

from kslim.pruning.handlers.base import LayerHandler

_HOMOGENEOUS_ACTIVATIONS = {"linear", "relu", "leaky_relu"}


def channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def activation_name(layer):
    return getattr(getattr(layer, "activation", None), "__name__", None)


def _spatial(layer, x, y):
    first = not channels_last(layer)
    c_in, c_out = (x[1], y[1]) if first else (x[-1], y[-1])
    return c_in, c_out, (x[2:] if first else x[1:-1]), (y[2:] if first else y[1:-1])


class ProducerHandler(LayerHandler):
    """A layer that makes each output channel from all of its input channels."""

    width_key = "filters"

    def classify(self, layer, rank):
        if not channels_last(layer):
            return "barrier", f"'{layer.name}' is channels_first"
        return "producer", None

    def weight_axes(self, layer, shapes):
        return [{-2: "in", -1: "out"}] + [{-1: "out"}] * (len(shapes) - 1)

    def edit_config(self, layer, config, out_keep):
        config[self.width_key] = len(out_keep)

    def bias_delta(self, layer, weights, dropped, values):
        c = np.asarray(values, np.float64)[dropped]
        kernel = weights[0]
        summed = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0)  # (in, out)
        return c @ summed[dropped]

    def bias_index(self, layer):
        return len(layer.weights) - 1 if layer.use_bias else None

    def enable_bias(self, layer, config):
        config["use_bias"] = True
        return True

    def rescalable(self, layer):
        return activation_name(layer) in _HOMOGENEOUS_ACTIVATIONS


class DenseHandler(ProducerHandler):
    width_key = "units"

    def classify(self, layer, rank):
        return "producer", None

    def macs(self, layer, x, y):
        return math.prod(x[1:]) * y[-1]


class ConvHandler(ProducerHandler):
    """Conv1D/2D/3D. One group per channel (`groups == filters == input channels`, ConvNeXt's
    depthwise convolution) passes each channel through on its own, like DepthwiseConv2D; other
    grouped convolutions mix channels within groups: barriers."""

    def classify(self, layer, rank):
        if not channels_last(layer):
            return "barrier", f"'{layer.name}' is a channels_first convolution"
        if _depthwise(layer):
            return "per_channel", None
        if layer.groups != 1:
            return "barrier", f"'{layer.name}' is a grouped convolution ({layer.groups} groups)"
        return "producer", None

    def weight_axes(self, layer, shapes):
        if _depthwise(layer):
            return [{-1: "out"}] * len(shapes)
        return super().weight_axes(layer, shapes)

    def edit_config(self, layer, config, out_keep):
        super().edit_config(layer, config, out_keep)
        if _depthwise(layer):
            config["groups"] = len(out_keep)

    def macs(self, layer, x, y):
        c_in, c_out, _, y_space = _spatial(layer, x, y)
        if _depthwise(layer):
            return math.prod(y_space) * c_out * math.prod(layer.kernel_size)
        return math.prod(y_space) * c_out * math.prod(layer.kernel_size) * c_in // layer.groups

    def rescalable(self, layer):
        return not _depthwise(layer) and super().rescalable(layer)

    def keeps_zero(self, layer):
        return _depthwise(layer) and not layer.use_bias


def _depthwise(layer):
    """A convolution with one group per channel: output channel j reads input channel j alone."""
    groups = getattr(layer, "groups", 1)
    return groups > 1 and groups == layer.filters == layer.input.shape[-1]


class ConvTransposeHandler(ProducerHandler):
    def weight_axes(self, layer, shapes):
        return [{-1: "in", -2: "out"}] + [{-1: "out"}] * (len(shapes) - 1)

    def macs(self, layer, x, y):
        # Every input position scatters a window into every output channel.
        c_in, c_out, x_space, _ = _spatial(layer, x, y)
        return math.prod(x_space) * c_in * math.prod(layer.kernel_size) * c_out

    def bias_delta(self, layer, weights, dropped, values):
        c = np.asarray(values, np.float64)[dropped]
        kernel = weights[0]
        summed = kernel.reshape(-1, kernel.shape[-2], kernel.shape[-1]).sum(axis=0)  # (out, in)
        return summed[:, dropped] @ c / float(np.prod(layer.strides))


class SeparableConvHandler(ProducerHandler):
    """SeparableConv1D/2D: a depthwise kernel per input channel, then a pointwise kernel."""

    def weight_axes(self, layer, shapes):
        return [{-2: "in"}, {-2: "in_expanded", -1: "out"}] + [{-1: "out"}] * (len(shapes) - 2)

    def macs(self, layer, x, y):
        c_in, c_out, _, y_space = _spatial(layer, x, y)
        depthwise = math.prod(y_space) * c_in * layer.depth_multiplier
        return depthwise * math.prod(layer.kernel_size) + depthwise * c_out

    def bias_delta(self, layer, weights, dropped, values):
        c = np.asarray(values, np.float64)[dropped]
        depthwise, pointwise = weights[0], weights[1]
        m = layer.depth_multiplier
        dw = depthwise.reshape(-1, depthwise.shape[-2], m).sum(axis=0)[dropped]  # (d, m)
        pw = pointwise.reshape(-1, pointwise.shape[-1]).reshape(-1, m, pointwise.shape[-1])
        return np.einsum("d,dm,dmo->o", c, dw, pw[dropped])

    def rescalable(self, layer):
        return False  # two kernels: the gain could sit in either


class DepthwiseConvHandler(LayerHandler):
    """DepthwiseConv1D/2D with depth_multiplier 1: channel j reads only input channel j."""

    def classify(self, layer, rank):
        if layer.depth_multiplier != 1 or not channels_last(layer):
            return "barrier", f"'{layer.name}' has depth_multiplier={layer.depth_multiplier}"
        return "per_channel", None

    def weight_axes(self, layer, shapes):
        return [{-2: "out"}] + [{-1: "out"}] * (len(shapes) - 1)

    def keeps_zero(self, layer):
        return not layer.use_bias  # linear in its input

    def macs(self, layer, x, y):
        c_in, _, _, y_space = _spatial(layer, x, y)
        return math.prod(y_space) * c_in * layer.depth_multiplier * math.prod(layer.kernel_size)
