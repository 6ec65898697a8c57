"""`profile`: parameters, FLOPs and activation memory of a Keras model, per layer and in total."""

import collections
import dataclasses
import json
import math
import numbers
import re

import keras

from kslim._internal import keras_api
from kslim.pruning import nesting
from kslim._internal.formatting import human as _human
from kslim._internal.formatting import human_bytes as _human_bytes
from kslim.pruning.handlers import get_handler

@dataclasses.dataclass(frozen=True)
class LayerProfile:
    """One layer call in a `Profile`.

    Attributes:
        name: str, the layer's name; a layer inside a nested model is named
            `"outer/inner"`.
        class_name: str, the layer's class (`"Conv2D"`), or the operation's
            class for a `keras.ops` call in a functional graph.
        output_shape: tuple of int, the output shape with the batch axis set
            to the profile's `batch_size`; a list of tuples for a layer with
            several outputs.
        params: int, the layer's weights (trainable and not); 0 on the second
            and later calls of a shared layer, so the column sums to the total.
        flops: int, 2 x multiply-accumulates of this call at `batch_size`.
        activation_bytes: int, bytes of the call's output(s) at `batch_size`.
    """

    name: str
    class_name: str
    output_shape: tuple
    params: int
    flops: int
    activation_bytes: int


_Call = collections.namedtuple("_Call", ["name", "operation", "node", "inputs", "outputs"])


def profile(model, batch_size=1):
    """Counts the parameters, FLOPs and activation memory of a Keras model.

    Use it to see what a model costs before and after pruning, to check a
    model against a paper's numbers, or to find the layers that dominate the
    compute. It reads only the model's graph: nothing is run.

    What is counted:

    - **params**: every weight, trainable or not (BatchNormalization's moving
      statistics included), as `model.count_params()`. `trainable_params` is
      also given: it is what PyTorch's `parameters()` counts, so compare it
      with papers whose code is in PyTorch (DenseNet-40: 1.02M trainable).
    - **FLOPs**: 2 x multiply-accumulates (MACs), as Liu et al. count them,
      of `Conv1D/2D/3D` (grouped too), `Conv1D/2D/3DTranspose`,
      `DepthwiseConv1D/2D`, `SeparableConv1D/2D` (depthwise and pointwise
      parts) and `Dense` (on inputs of any rank). Padded positions count, bias
      additions do not, and every other layer (BatchNormalization,
      activations, pooling, merges, ...) counts 0. With this rule the CIFAR
      VGG-19 of the paper comes out at 7.96e8 (the paper: 7.97e8).
    - **activation memory**: bytes of each layer's output(s) (elements x dtype
      size), their sum (`activation_bytes`), and `peak_activation_bytes`, the
      most memory that tensors alive at once take when the layers run in the
      graph's topological order and each tensor is freed after its last
      consumer (an inference estimate: no in-place reuse, inputs included).

    FLOPs and memory are for one forward pass of `batch_size` samples (axis 0
    of every tensor is the batch axis). Nested models are descended into; a
    custom layer made of Keras layers (a KerasHub block) is counted through
    the layers it calls, as `kslim.prune` inlines it; a layer called several
    times (a shared layer) gets one row per call.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017 (FLOPs as 2 x MACs, Table 1).

    Args:
        model: a built functional or Sequential `keras.Model`.
        batch_size: int, the batch size of the forward pass (1 by default).

    Returns:
        A `Profile`: `.params`, `.trainable_params`, `.flops`,
        `.activation_bytes`, `.peak_activation_bytes` (ints), `.layers` (a
        list of `LayerProfile`), `str()` for a table and `to_dict()` for JSON.

    Raises:
        TypeError: if `model` is not a `keras.Model`.
        ValueError: if the model is not built, is a subclassed model (its
            graph is unknown), has an unknown dimension other than the batch
            axis, or if `batch_size` is not a positive int.

    Example:

    >>> model = kslim.models.get("vgg19")
    >>> p = kslim.profile(model)
    >>> p.flops                      # 796_272_640, i.e. 7.96e8
    >>> print(p)                     # per-layer table with totals
    """
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"profile expects a keras.Model, got {type(model).__name__}: {model!r}; "
            "wrap layers in a functional model (keras.Model(inputs, outputs)) first."
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, numbers.Integral)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    batch_size = int(batch_size)
    if getattr(model, "inputs", None) and any(nesting.composite(layer) for layer in keras_api.all_layers(model)):
        model = nesting.flatten(model)  # else its blocks' convolutions would count 0
    graph = _graph(model)

    alias = {}
    calls = []
    for tensor in graph.inputs:
        alias[id(tensor)] = id(tensor)
        layer = keras_api.producing_operation(tensor)
        name = layer.name if layer is not None else tensor.name
        calls.append(_Call(name, layer, None, [], [tensor]))
    _walk(graph, "", alias, calls)

    records = []
    sizes = {}
    seen = set()
    for call in calls:
        out_bytes = 0
        for tensor in call.outputs:
            sizes[alias[id(tensor)]] = _bytes(call.name, tensor, batch_size)
            out_bytes += sizes[alias[id(tensor)]]
        operation = call.operation
        params = 0
        if isinstance(operation, keras.layers.Layer) and id(operation) not in seen:
            seen.add(id(operation))
            params = operation.count_params() if operation.built else 0
        flops = 2 * batch_size * _macs(call) if call.node is not None else 0
        shapes = [(batch_size,) + tuple(t.shape[1:]) for t in call.outputs]
        records.append(
            LayerProfile(
                name=call.name,
                class_name=type(operation).__name__ if operation is not None else "InputLayer",
                output_shape=shapes[0] if len(shapes) == 1 else shapes,
                params=int(params),
                flops=int(flops),
                activation_bytes=int(out_bytes),
            )
        )

    outputs = {alias[id(t)] for t in graph.outputs}
    return Profile(
        name=model.name,
        batch_size=batch_size,
        layers=records,
        params=model.count_params(),
        trainable_params=_count(model.trainable_weights),
        peak_activation_bytes=_peak(calls, alias, sizes, outputs),
    )


class Profile:
    """The cost of a model, per layer and in total, as computed by `profile`.

    Attributes:
        name: str, the model's name.
        batch_size: int, the batch size the FLOPs and memory are for.
        layers: list of `LayerProfile`, one per layer call, in graph order.
        params: int, all weights (trainable and not), as `count_params()`.
        trainable_params: int, the trainable weights.
        flops: int, 2 x multiply-accumulates of the whole forward pass.
        activation_bytes: int, bytes of all layer outputs (inputs included).
        peak_activation_bytes: int, the most bytes alive at once (see
            `profile`).
    """

    def __init__(self, name, batch_size, layers, params, trainable_params, peak_activation_bytes):
        self.name = name
        self.batch_size = batch_size
        self.layers = list(layers)
        self.params = int(params)
        self.trainable_params = int(trainable_params)
        self.flops = sum(r.flops for r in self.layers)
        self.activation_bytes = sum(r.activation_bytes for r in self.layers)
        self.peak_activation_bytes = int(peak_activation_bytes)

    def to_dict(self):
        """Returns the profile as plain Python data (for `json.dumps`)."""
        layers = []
        for r in self.layers:
            record = dataclasses.asdict(r)
            shape = r.output_shape
            record["output_shape"] = (
                [list(s) for s in shape] if isinstance(shape, list) else list(shape)
            )
            layers.append(record)
        return {
            "name": self.name,
            "batch_size": self.batch_size,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "layers": layers,
        }

    def to_json(self, **kwargs):
        """Returns `to_dict()` as a JSON string; `kwargs` go to `json.dumps`."""
        return json.dumps(self.to_dict(), **kwargs)

    def __repr__(self):
        return (
            f"<Profile '{self.name}': {_human(self.params)} params, "
            f"{_human(self.flops)} FLOPs at batch_size={self.batch_size}>"
        )

    def __str__(self):
        header = ("Layer", "Class", "Output shape", "Params", "FLOPs", "Activations")
        rows = [
            (
                r.name,
                r.class_name,
                _shape_str(r.output_shape),
                _human(r.params),
                _human(r.flops),
                _human_bytes(r.activation_bytes),
            )
            for r in self.layers
        ]
        total = (
            "Total",
            "",
            "",
            _human(self.params),
            _human(self.flops),
            _human_bytes(self.activation_bytes),
        )
        widths = [max(len(row[i]) for row in [header, total] + rows) for i in range(6)]

        def line(row):
            left = [row[i].ljust(widths[i]) for i in range(3)]
            right = [row[i].rjust(widths[i]) for i in range(3, 6)]
            return "  ".join(left + right).rstrip()

        rule = "-" * len(line(header))
        out = [
            f"Profile of '{self.name}' at batch_size={self.batch_size} "
            "(FLOPs = 2 x multiply-accumulates of conv and dense layers)",
            line(header),
            rule,
        ]
        out += [line(row) for row in rows]
        out += [rule, line(total)]
        out.append(
            f"Params: {self.params:,} ({_human(self.params)}), trainable {self.trainable_params:,} "
            f"({_human(self.trainable_params)}); FLOPs: {self.flops:,} ({_human(self.flops)}); "
            f"peak activation memory: {_human_bytes(self.peak_activation_bytes)}"
        )
        return "\n".join(out)


def _graph(model):
    """The functional graph of `model`: itself, or the one a built Sequential keeps."""
    if isinstance(model, keras.Sequential) and not model.built:
        raise ValueError(
            f"Cannot profile Sequential model '{model.name}': it is not built, so its "
            "input shape is unknown. Start it with keras.Input(shape) or call "
            "model.build((None, ...)) first."
        )
    return keras_api.functional_graph(model)


def _walk(graph, prefix, alias, calls):
    """Appends the layer calls of `graph` in topological order, flattening nested models.

    `alias` maps `id(KerasTensor)` to a key shared by all tensors that are the same
    value (a nested model's inner input and the outer tensor fed to it).
    """
    for node in keras_api.ordered_nodes(graph):
        operation = node.operation
        if operation is None or node.is_input:
            continue
        if any(id(t) not in alias for t in node.input_tensors):
            continue  # Not reachable from the inputs; Keras skips it too.
        if isinstance(operation, keras.Model):
            inner = _graph(operation)
            for t_inner, t_outer in zip(inner.inputs, node.input_tensors):
                alias[id(t_inner)] = alias[id(t_outer)]
            _walk(inner, prefix + operation.name + "/", alias, calls)
            for t_inner, t_outer in zip(inner.outputs, node.outputs):
                alias[id(t_outer)] = alias[id(t_inner)]
            continue
        inputs = [alias[id(t)] for t in node.input_tensors]
        for t in node.outputs:
            alias[id(t)] = id(t)
        calls.append(_Call(prefix + operation.name, operation, node, inputs, node.outputs))


def _macs(call):
    """Multiply-accumulates of one sample through one layer call (0 for uncounted layers)."""
    x = _known(call.name, call.node.input_tensors[0].shape)
    y = _known(call.name, call.node.outputs[0].shape)
    return layer_macs(call.operation, x, y)


def layer_macs(layer, x, y):
    """Multiply-accumulates of one sample through `layer` with input shape `x`, output `y`.

    Asked of the layer's handler (`kslim.pruning.LayerHandler.macs`), the one
    place that knows each layer kind; operations that are not layers count 0.
    """
    if not isinstance(layer, keras.layers.Layer):
        return 0
    return get_handler(layer).macs(layer, x, y)


def _known(name, shape):
    shape = tuple(shape)
    if any(d is None for d in shape[1:]):
        raise ValueError(
            f"Cannot profile layer '{name}': its shape {shape} has an unknown dimension "
            "besides the batch axis. Build the model with a fixed input shape, e.g. "
            "keras.Input((32, 32, 3)) instead of keras.Input((None, None, 3))."
        )
    return shape


def _bytes(name, tensor, batch_size):
    return batch_size * math.prod(_known(name, tensor.shape)[1:]) * _itemsize(tensor.dtype)


def _itemsize(dtype):
    """Bytes per element of a Keras dtype name ("float32" -> 4, "bfloat16" -> 2, "bool" -> 1)."""
    name = str(getattr(dtype, "name", dtype))
    if "bool" in name:
        return 1
    bits = re.search(r"\d+", name)
    return max(1, int(bits.group()) // 8) if bits else 4


def _count(weights):
    unique = {id(w): w for w in weights}
    return sum(math.prod(w.shape) for w in unique.values())


def _peak(calls, alias, sizes, outputs):
    """Peak bytes alive when the calls run in order and each tensor dies after its last use."""
    last_use = {}
    for i, call in enumerate(calls):
        for key in call.inputs + [alias[id(t)] for t in call.outputs]:
            last_use[key] = i
    live = peak = 0
    for i, call in enumerate(calls):
        produced = {alias[id(t)] for t in call.outputs}
        live += sum(sizes[key] for key in produced)
        peak = max(peak, live)
        for key in produced | set(call.inputs):
            if last_use[key] == i and key not in outputs:
                live -= sizes[key]
    return peak


def _shape_str(shape):
    if isinstance(shape, list):
        return ", ".join(_shape_str(s) for s in shape)
    return "(" + ", ".join(str(d) for d in shape) + ")"
