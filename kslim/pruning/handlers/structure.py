"""Handlers of layers that combine or rearrange channels: merges, Concatenate, Flatten, Reshape."""

from kslim.pruning.handlers.base import LayerHandler
from kslim.pruning.handlers.producers import channels_last


class RoleHandler(LayerHandler):
    """A layer whose role is fixed and that has no weights."""

    def __init__(self, role):
        self.role = role

    def classify(self, layer, rank):
        return self.role, None


class ScaledSumHandler(RoleHandler):
    """InceptionResNetV2's `CustomScaleLayer`: `x[0] + x[1] * scale`, a merge of its two inputs."""

    def __init__(self):
        super().__init__("merge")

    def homogeneous(self, layer):
        return True


class ConcatenateHandler(LayerHandler):
    def classify(self, layer, rank):
        return ("concat" if layer.axis in (-1, rank - 1) else "merge"), None


class FlattenHandler(LayerHandler):
    def classify(self, layer, rank):
        if not channels_last(layer):
            return "barrier", f"'{layer.name}' is channels_first"
        return "flatten", None

    def homogeneous(self, layer):
        return True


class ReshapeHandler(LayerHandler):
    def classify(self, layer, rank):
        return "reshape", None

    def edits_config(self, layer):
        return True

    def edit_config(self, layer, config, out_keep):
        config["target_shape"] = list(config["target_shape"][:-1]) + [len(out_keep)]

    def homogeneous(self, layer):
        return True


class BarrierHandler(LayerHandler):
    def __init__(self, reason, homogeneous=False):
        self.reason = reason
        self._homogeneous = homogeneous

    def homogeneous(self, layer):
        return self._homogeneous

    def classify(self, layer, rank):
        return "barrier", self.reason.format(name=layer.name)
