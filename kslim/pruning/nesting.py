"""Nested models (a backbone used as a layer) and composite custom layers inlined into one flat graph, for pruning.

`keras.applications` backbones and other functional or Sequential models are
usually called as one layer of the user's model (transfer learning). kslim's
channel graph cannot narrow a nested model from the outside, so `kslim.plan`
and `kslim.prune` first inline every nested model, at any depth, into the
outer graph: the result has the same layers (same names, same weights) called
in the same order, without the wrappers.

A custom layer without a handler whose weights all belong to Keras layers it
calls (KerasHub's `MBConvBlock`, `InvertedResidualBlock`, a user's
`ConvBNReLU` block) is inlined the same way: its `call` is traced on symbolic
inputs, which records the layers and `keras.ops` it calls as a functional
graph. One whose `call` cannot be traced (Python control flow on values), or
that holds weights of its own, stays one layer: a barrier the plan names.
"""

import keras
import numpy as np

from kslim._internal import keras_api
from kslim._internal.formatting import first_line
from kslim.pruning.handlers.base import has_handler


def has_nested(model):
    """Whether `model` calls another model, or a composite custom layer kslim can inline, as a layer."""
    return any(isinstance(layer, keras.Model) or composite(layer) for layer in model.layers)


def composite(layer):
    """Whether `layer` is a custom layer that `flatten` inlines: no handler, and every weight it holds
    belongs to the Keras layers it is made of."""
    if not isinstance(layer, keras.layers.Layer) or isinstance(layer, (keras.Model, keras.layers.InputLayer)):
        return False
    if has_handler(layer) or type(layer).__module__.startswith("keras."):
        return False  # Keras's own composite layers (attention, RNN wrappers) stay whole
    parts = keras_api.sublayers(layer)
    if not parts:
        return False
    owned = {id(v) for part in parts for v in part.weights}
    return all(id(v) in owned for v in layer.weights)


def _traced(layer, args, kwargs):
    """`(functional model of layer.call on fresh symbolic inputs shaped like args, the symbolic tensors
    of args it replaced)`, or None where it cannot be traced or calls something other than its own
    layers and keras.ops."""
    leaves = [a for a in keras.tree.flatten(args) if keras_api.is_symbolic(a)]
    fresh = [keras.Input(batch_shape=a.shape, dtype=a.dtype) for a in leaves]
    swap = dict(zip(map(id, leaves), fresh))
    fresh_args = keras.tree.map_structure(lambda a: swap.get(id(a), a), args)
    try:
        outputs = layer.call(*fresh_args, **kwargs)
        graph = keras.Model(fresh, outputs)
    except Exception:  # noqa: BLE001 - any failure to trace leaves the layer whole, a named barrier
        return None
    if not _replays(layer, graph, fresh_args, kwargs, fresh):
        return None
    # Its own layers, and layers without weights that `call` makes (KerasHub's FusedMBConvBlock
    # builds its squeeze-and-excitation's pooling, reshape and multiply there).
    parts = {id(part) for part in keras_api.sublayers(layer, recursive=True)}
    called = [op for op in graph.operations if isinstance(op, keras.layers.Layer)
              and not isinstance(op, keras.layers.InputLayer)]
    if any(id(op) not in parts and op.weights for op in called):
        return None
    return graph, leaves


def _replays(layer, graph, args, kwargs, fresh):
    """Whether the traced `graph` computes what `layer.call` computes, on one random input: a trace can
    record a value as a constant (KerasHub's SegFormer reshapes by the batch size, which was None while
    tracing), and such a graph would not run, or would compute something else, on real inputs."""
    rng = np.random.default_rng(0)

    def sample(t):
        shape = (1,) + tuple(16 if d is None else int(d) for d in t.shape[1:])
        dtype = keras.backend.standardize_dtype(t.dtype)
        return rng.standard_normal(shape).astype(dtype) if "float" in dtype else np.zeros(shape, dtype)

    values = {id(t): sample(t) for t in fresh}
    concrete = keras.tree.map_structure(lambda a: values.get(id(a), a), args)
    try:
        want = keras.tree.flatten(layer.call(*concrete, **kwargs))
        got = keras.tree.flatten(graph([values[id(t)] for t in fresh]))  # built on a list of inputs
        return len(want) == len(got) and all(
            np.allclose(keras.ops.convert_to_numpy(w), keras.ops.convert_to_numpy(g), rtol=1e-4, atol=1e-5)
            for w, g in zip(want, got))
    except Exception:  # noqa: BLE001 - a graph that cannot run is not the layer
        return False


def flatten(model):
    """A functional copy of `model` with every nested model and composite custom layer inlined; `model` is not touched.

    The copy computes the same outputs. Its layers are new (cloned, weights
    copied), so the user's model and its layers keep their own nodes (a
    layer's `.output` still works on the original).

    Raises:
        ValueError: if two inlined layers have the same name.
    """
    if not isinstance(model, keras.Model) or not has_nested(model):
        return model  # anything else is refused, with its reason, by the analysis
    if not getattr(model, "inputs", None):
        return model  # not built: the analysis says so
    source = model
    if keras_api.is_functional_subclass(model):
        # A functional subclass (a KerasHub backbone) may not take (inputs, outputs) in its constructor,
        # which clone_model calls with Keras 3.12: clone its graph as a plain functional model.
        source = keras.Model(model.inputs, model.outputs, name=model.name)
    try:
        copy = keras.models.clone_model(source)
    except Exception as error:  # noqa: BLE001 - named below, with the layer at fault where one is
        raise layer_rebuild_error(model) or ValueError(
            f"Cannot prune '{model.name}': Keras could not rebuild it from its config ({first_line(error)})."
        ) from error
    _keep_names(model, copy)  # first: the weights are matched by name where their order differs
    _copy_weights(model, copy)
    uses = {}

    def once(op):
        """A layer without weights that an inlined block calls more than once (MBConvBlock's
        activation) gets a copy per further call, so that each call can be pruned on its own."""
        if not isinstance(op, keras.layers.Layer) or op.weights or isinstance(op, keras.Model):
            return operation(op)
        uses[id(op)] = n = uses.get(id(op), 0) + 1
        if n == 1:
            return operation(op)
        config = op.get_config()
        config["name"] = f"{op.name}_call{n}"
        config.pop("build_config", None)
        return op.__class__.from_config(config)

    def operation(op):
        if isinstance(op, keras.Sequential):
            def call(x, *args, **kwargs):
                for layer in op.layers:
                    x = operation(layer)(x)
                return x

            return call
        if isinstance(op, keras.Model):
            return lambda *args, **kwargs: keras_api.run_graph(op, args[0] if len(args) == 1 else args, operation)
        if composite(op):
            def call(*args, **kwargs):
                traced = _traced(op, args, kwargs)
                if traced is None:
                    return op(*args, **kwargs)
                graph, leaves = traced
                return keras_api.run_graph(graph, leaves[0] if len(leaves) == 1 else leaves, once)

            return call
        return op

    # Named after the user's input layers (clone_model names its inputs after their tensors).
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=keras_api.producing_operation(t).name)
              for t in model.inputs]
    flat = keras.Model(inputs, operation(copy)(*inputs), name=model.name)
    seen, clashes = set(), set()
    for layer in flat.layers:
        (clashes if layer.name in seen else seen).add(layer.name)
    if clashes:
        raise ValueError(
            f"Model '{model.name}' nests models whose layers share the names {sorted(clashes)[:5]}; "
            "kslim inlines nested models to prune them, so their layer names must be unique: rename "
            "the layers (layer.name is set at construction, e.g. name=...)."
        )
    return flat


def layer_rebuild_error(model):
    """A `ValueError` naming the first layer of `model` whose own config does not rebuild it (KerasHub's
    ViTPatchingAndEmbedding and MiT encoders), or None: why Keras could not rebuild the model, if a layer is."""
    for layer in keras_api.all_layers(model):
        if isinstance(layer, keras.Model):
            continue
        try:
            layer.__class__.from_config(layer.get_config())
        except Exception as own:  # noqa: BLE001 - any failure to rebuild is this layer's
            return ValueError(
                f"Cannot prune '{model.name}': its layer '{layer.name}' ({type(layer).__name__}) does not rebuild "
                f"from its own config ({_innermost(own)}), and kslim rebuilds a model from its layers' configs. "
                "Fix the layer's get_config (for a library's layer, report it there), or prune a model without it."
            )
    return None


def _innermost(error):
    """Keras's deserialization errors end with the exception underneath ("Exception encountered: ...")."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    return last.split("Exception encountered: ", 1)[-1]


def _copy_weights(model, copy):
    """Copies `model`'s weights into `copy` (its clone): as the model lists them, or, where the two list
    them in different orders (KerasHub's DeepLabV3 segmenter), layer by layer, matched by name."""
    try:
        copy.set_weights(model.get_weights())
        return
    except ValueError:
        pass
    def weighted(m):
        return [layer for layer in keras_api.all_layers(m) if not isinstance(layer, keras.Model) and layer.weights]

    olds = {layer.name: layer for layer in weighted(model)}
    # Where from_config renamed a layer, the n-th of a class with weights is the n-th in the model.
    by_class = {}
    for layer in weighted(model):
        by_class.setdefault(type(layer), []).append(layer)
    seen = {}
    for new in weighted(copy):
        n = seen[type(new)] = seen.get(type(new), -1) + 1
        old = olds.get(new.name)
        if old is None and len(by_class.get(type(new), ())) > n:
            old = by_class[type(new)][n]
        if old is None or type(old) is not type(new):
            raise ValueError(
                f"Cannot prune '{model.name}': its copy has a layer '{new.name}' ({type(new).__name__}) that the "
                "model has not, so its weights cannot be copied; prune the model without the part that holds it."
            )
        new.set_weights(old.get_weights())


def _keep_names(model, copy):
    """Gives the layers of `copy` (a clone of `model`) their originals' names where `from_config`
    renamed them (KerasHub's MobileNet blocks append "_0" to their own name and their layers')."""
    olds, news = keras_api.all_layers(model), keras_api.all_layers(copy)
    old_names, new_names = {layer.name for layer in olds}, {layer.name for layer in news}
    for old, new in zip(olds, news):  # the same walk; only names from_config made up are given back
        if type(old) is type(new) and new.name not in old_names and old.name not in new_names:
            new.name = old.name
