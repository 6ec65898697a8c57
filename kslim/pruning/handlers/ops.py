"""Handlers of keras.ops calls in a functional graph: element-wise arithmetic, activations, concatenate, split.

`x = ops.relu6(x + 3.0) * (1.0 / 6.0)` (MobileNetV3's hard sigmoid) leaves
three `Operation`s in the graph, not layers. Each is understood like its layer
twin: an element-wise op of two tensors ties their channels (`Add`,
`Multiply`), an op of one tensor and scalar constants passes each channel
through on its own, a reduction over other axes (`ops.mean(x, axis=(1, 2))`)
keeps each channel, `ops.concatenate` and `ops.split` on the channel axis
concatenate and split the channel lists. An op with a constant of more than
one value (`x * np.ones(c)`) stays a barrier: kslim cannot slice a constant it
does not own. Ops have no weights and cost no FLOPs in kslim's count.
"""

import numbers

import keras
import numpy as np

from kslim._internal import keras_api
from kslim.pruning.handlers.base import LayerHandler


def _split_arguments(op):
    """The op's symbolic tensor arguments and its other (constant) arguments, in call order."""
    args, kwargs = keras_api.call_arguments(op)
    leaves = keras.tree.flatten((args, kwargs))
    tensors = [v for v in leaves if isinstance(v, keras.KerasTensor)]
    constants = [v for v in leaves if not isinstance(v, keras.KerasTensor)]
    return tensors, constants, leaves


def _numeric(value):
    return isinstance(value, (numbers.Number, np.ndarray, np.generic)) and not isinstance(value, bool)


def _constant_problem(op, constants):
    for value in constants:
        if _numeric(value) and np.size(value) > 1:
            return (
                f"operation '{op.name}' ({type(op).__name__}) uses a constant of shape "
                f"{np.shape(value)}, which kslim cannot slice; make it a layer's weight, or "
                "register a handler with kslim.pruning.register_handler"
            )
    return None


class OpHandler(LayerHandler):
    """A keras.ops call: no weights, nothing in its config to edit, no FLOPs counted."""

    def weight_axes(self, layer, shapes):
        return [{} for _ in shapes]

    def count_params(self, layer, n_in, n_out):
        return 0


class UnaryOpHandler(OpHandler):
    """`y[..., c] = f(x[..., c])`: activations (relu6, hard_sigmoid, silu, ...), abs, exp, clip, cast."""

    def __init__(self, homogeneous=False, keeps_zero=None):
        self._homogeneous = homogeneous
        self._keeps_zero = homogeneous if keeps_zero is None else keeps_zero

    def keeps_zero(self, layer):
        if type(layer).__name__ == "Clip":
            return layer.x_min <= 0 <= layer.x_max
        return self._keeps_zero

    def classify(self, layer, rank):
        tensors, constants, _ = _split_arguments(layer)
        problem = _constant_problem(layer, constants + _attribute_constants(layer))
        if problem:
            return "barrier", problem
        return "per_channel", None

    def homogeneous(self, layer):
        return self._homogeneous


def _attribute_constants(op):
    # Clip keeps its bounds on the op, not in the call.
    return [getattr(op, k) for k in ("x_min", "x_max") if hasattr(op, k)]


class BinaryOpHandler(OpHandler):
    """`x + y`, `x * y`, `maximum(x, y)`, ...: two tensors tie their channels; a tensor and a scalar
    pass each channel through on its own."""

    def __init__(self, role, kind):
        self.role = role  # "merge" or "multiply", for two tensors
        self.kind = kind  # "add", "multiply", "divide", "extremum": what a scalar does to f(0) and scaling

    def classify(self, layer, rank):
        tensors, constants, _ = _split_arguments(layer)
        problem = _constant_problem(layer, constants)
        if problem:
            return "barrier", problem
        if len(tensors) < 2:
            return "per_channel", None
        if self.role == "barrier":
            return "barrier", (
                f"operation '{layer.name}' ({type(layer).__name__}) divides by a tensor, which a pruned "
                "channel's zero would turn into inf"
            )
        return self.role, None

    def homogeneous(self, layer):
        tensors, constants, leaves = _split_arguments(layer)
        if len(tensors) != 1 or len(constants) != 1 or not _numeric(constants[0]):
            return False
        if self.kind == "multiply":  # x * c
            return True
        if self.kind == "divide":  # x / c, not c / x
            return isinstance(leaves[0], keras.KerasTensor)
        return float(np.asarray(constants[0])) == 0.0  # x + 0, maximum(x, 0)


class ReduceOpHandler(OpHandler):
    """`ops.mean(x, axis=(1, 2), keepdims=True)` (a squeeze-and-excitation's squeeze), max, min, sum:
    over other axes than the channels', each channel on its own, like a global pooling layer."""

    def classify(self, layer, rank):
        axis = layer.axis
        axes = (axis,) if isinstance(axis, int) else tuple(axis) if axis is not None else tuple(range(rank))
        if any(a % rank == rank - 1 for a in axes):
            return "barrier", f"operation '{layer.name}' ({type(layer).__name__}) reduces the channel axis"
        return "per_channel", None

    def homogeneous(self, layer):
        return True


class ConcatenateOpHandler(OpHandler):
    def classify(self, layer, rank):
        return ("concat" if layer.axis in (-1, rank - 1) else "merge"), None

    def homogeneous(self, layer):
        return True


class SplitOpHandler(OpHandler):
    """`ops.split(x, sections, axis=-1)`: each output is a run of the input's channels."""

    def classify(self, layer, rank):
        if layer.axis not in (-1, rank - 1):
            return "barrier", f"operation '{layer.name}' splits axis {layer.axis}, not the channel axis"
        return "split", None

    def homogeneous(self, layer):
        return True

    def edits_config(self, layer):
        return True

    def split_config(self, config, widths):
        """Edits `config` so the split makes outputs of `widths` channels."""
        config["indices_or_sections"] = [int(i) for i in np.cumsum(widths)[:-1]]
