"""Nested models (a backbone used as a layer) inlined into one flat functional graph, for pruning.

`keras.applications` backbones and other functional or Sequential models are
usually called as one layer of the user's model (transfer learning). kslim's
channel graph cannot narrow a nested model from the outside, so `kslim.plan`
and `kslim.prune` first inline every nested model, at any depth, into the
outer graph: the result has the same layers (same names, same weights) called
in the same order, without the wrappers.
"""

import keras

from kslim._internal import keras_api


def has_nested(model):
    """Whether `model` calls another model as a layer."""
    return any(isinstance(layer, keras.Model) for layer in model.layers)


def flatten(model):
    """A functional copy of `model` with every nested model inlined; `model` itself is not touched.

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
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())

    def operation(op):
        if isinstance(op, keras.Sequential):
            def call(x, *args, **kwargs):
                for layer in op.layers:
                    x = operation(layer)(x)
                return x

            return call
        if isinstance(op, keras.Model):
            return lambda *args, **kwargs: keras_api.run_graph(op, args[0] if len(args) == 1 else args, operation)
        return op

    # Named after the user's input layers (clone_model names its inputs after their tensors).
    inputs = [keras.Input(batch_shape=t.shape, dtype=t.dtype, name=keras_api.producing_operation(t).name)
              for t in model.inputs]
    outputs = operation(copy)(*inputs)
    names = [layer.name for layer in keras_api.all_layers(copy) if not isinstance(layer, keras.Model)]
    seen, clashes = set(), set()
    for name in names:
        (clashes if name in seen else seen).add(name)
    clashes -= {t.name for t in inputs}
    if clashes:
        raise ValueError(
            f"Model '{model.name}' nests models whose layers share the names {sorted(clashes)[:5]}; "
            "kslim inlines nested models to prune them, so their layer names must be unique: rename "
            "the layers (layer.name is set at construction, e.g. name=...)."
        )
    return keras.Model(inputs, outputs, name=model.name)
