"""Every use of Keras's private API in kslim, in one place, each with why.

Keras 3 has no public way to walk a functional graph node by node, to turn
safe mode off for one call, or to read an optimizer's schedule; kslim needs
all three. If a Keras release moves one of these, this file is the only one to
change (CI runs the tests against the oldest and the newest Keras that
`setup.py` accepts).
"""

import contextlib

import keras

# Functional is the class of keras.Model(inputs, outputs) and of KerasHub backbones; it is not
# exported publicly, and isinstance(model, keras.Model) is true for subclassed models too.
from keras.src.models.functional import Functional

# Keras has a global switch (keras.config.enable_unsafe_deserialization) but no scoped one;
# rebuilding an in-memory model whose Lambda layers are the user's own code needs exactly one call.
from keras.src.saving.serialization_lib import SafeModeScope


def is_functional(model):
    """Whether `model` records a layer graph (functional, or a Functional subclass)."""
    return isinstance(model, Functional)


def is_functional_subclass(model):
    """Whether `model` is an instance of a subclass of Functional (a KerasHub backbone), not Functional itself."""
    return isinstance(model, Functional) and type(model) is not Functional


def functional_graph(model):
    """The functional graph of a model: itself, or the one a built Sequential keeps.

    Raises:
        TypeError: for something that is not a `keras.Model` (a path, a layer).
        ValueError: for an unbuilt Sequential or a subclassed model.
    """
    if not isinstance(model, keras.Model):
        hint = (
            "load the file first with keras.saving.load_model(path) (or use the kslim-prune command)"
            if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__")
            else "wrap layers in a functional model, keras.Model(inputs, outputs)"
        )
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__} {model!r}; {hint}.")
    if isinstance(model, keras.Sequential):
        # A built Sequential keeps a Functional twin in `_functional`; there is no public accessor.
        graph = getattr(model, "_functional", None)
        if not model.built or graph is None:
            raise ValueError(
                f"Sequential model '{model.name}' has no known input shape; start it with "
                "keras.Input(shape) or call model.build((None, ...)) first."
            )
        return graph
    if not isinstance(model, Functional):
        raise ValueError(
            f"Cannot analyse model '{model.name}' ({type(model).__name__}): it is a subclassed "
            "model, whose graph Keras does not record. Build it with the functional API "
            "(keras.Model(inputs, outputs)) or as a keras.Sequential."
        )
    return model


def ordered_nodes(graph):
    """The nodes of a functional graph in topological order, inputs first.

    `_nodes_by_depth` is how Keras itself orders a functional model's calls;
    `model.layers` loses the order of calls and repeated calls.
    """
    by_depth = graph._nodes_by_depth
    return [n for d in sorted(by_depth, reverse=True) for n in by_depth[d]]


def producing_operation(tensor):
    """The layer or operation whose call made a symbolic tensor (None for an input)."""
    # KerasTensor._keras_history is (operation, node_index, tensor_index); no public accessor.
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def all_layers(model):
    """Every layer inside `model`, descending into nested models and layers that hold layers."""
    # _flatten_layers also finds layers tracked as attributes of custom layers (a KerasHub block's
    # BatchNormalization), which model.layers does not list.
    return model._flatten_layers(include_self=False, recursive=True)


def sublayers(layer, recursive=False):
    """The layers `layer` holds (as attributes or lists), without itself."""
    return list(layer._flatten_layers(include_self=False, recursive=recursive))


def is_symbolic(value):
    """Whether `value` is a symbolic tensor of a functional graph."""
    return isinstance(value, keras.KerasTensor)


@contextlib.contextmanager
def unsafe_deserialization():
    """Safe mode off for the enclosed `from_config` calls only."""
    with SafeModeScope(safe_mode=False):
        yield


def learning_rate_schedule(optimizer):
    """The optimizer's schedule object (or its variable), as given at construction."""
    # optimizer.learning_rate returns the *current value*, not the schedule.
    return getattr(optimizer, "_learning_rate", None)


def run_graph(model, inputs, operation_fn):
    """Calls a functional model's graph on `inputs`, each operation through `operation_fn(op)`."""
    # Functional._run_through_graph is how Keras itself calls its graph; it has no public form.
    return model._run_through_graph(inputs, operation_fn=operation_fn)


# Keras's fit starts two passes over a tf.data dataset per epoch (measured with Keras 3.12 and 3.15: after
# fit(epochs=n) the dataset's seeded shuffling has advanced 2n epochs). `slim` replays that many on resume;
# tests/slimming/test_slimming.py fails if a Keras version changes it.
FIT_PASSES_PER_EPOCH = 2


def call_arguments(operation):
    """`(args, kwargs)` of an operation's first call, symbolic tensors included.

    A keras.ops call in a functional graph (`x + 3.0`, `ops.relu6(x)`) is an
    `Operation` whose constants (the `3.0`) live only in its call's node;
    `Node.arguments` has no public accessor.
    """
    nodes = getattr(operation, "_inbound_nodes", None) or []
    if not nodes:
        return (), {}
    arguments = nodes[0].arguments
    return tuple(arguments.args), dict(arguments.kwargs)


def operation_classes(module, names):
    """The keras.ops `Operation` classes called `names` in `keras.src.ops.<module>` (those that exist).

    Keras exports the functions (`keras.ops.add`), not the classes their calls
    leave in a graph; kslim registers handlers for the classes.
    """
    import importlib

    found = importlib.import_module(f"keras.src.ops.{module}")
    return [getattr(found, name) for name in names if isinstance(getattr(found, name, None), type)]


def applications_layer(module, name):
    """A custom layer class that a keras.applications model uses, or None where this Keras has none.

    `CustomScaleLayer` (InceptionResNetV2) and `LayerScale` (ConvNeXt) live in
    `keras.src.applications.<module>`; Keras does not export them.
    """
    import importlib

    try:
        found = importlib.import_module(f"keras.src.applications.{module}")
    except ImportError:
        return None
    cls = getattr(found, name, None)
    return cls if isinstance(cls, type) else None


TRANSPOSED_CONVS = (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)


def layer_config(layer):
    """`layer.get_config()`, completed by `complete_config`."""
    return complete_config(layer, layer.get_config())


def complete_config(layer, config):
    """Restores in `config` (a config of `layer`, edited in place and returned) what older Keras leaves out:
    Keras 3.12's transposed convolutions drop `output_padding`, so a layer rebuilt from its config computed a
    smaller output."""
    if getattr(layer, "output_padding", None) is not None and config.get("output_padding") is None:
        config["output_padding"] = layer.output_padding
    return config
