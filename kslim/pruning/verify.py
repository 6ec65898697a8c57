"""The pruned model is run before it is returned: on inputs of the model's shape, against the masked model."""

import keras
import numpy as np

from kslim._internal import keras_api
from kslim._internal.formatting import first_line
from kslim.pruning.handlers import get_handler

# What `kslim.prune` may differ by from the masked model, as max |difference| / max |masked output|. Exact
# compensation gives float rounding (1e-7 to 1e-6); the largest known remainder is a constant through a
# same-padded depthwise convolution before its reader (NASNetMobile, 7.6e-4), folded in the interior only.
TOLERANCE = 1e-2
_UNKNOWN_SIZE = 32  # for an input axis of unknown size


def masked_output(model, plan, x):
    """What `model` computes on `x` with the scaling factors `plan` prunes ("zeroed") set to 0: the output
    a model pruned by `plan` must reproduce, as a list of NumPy arrays. The factors are restored afterwards,
    even on error."""
    saved, layers = [], _layers(model)
    for name, rec in plan.layers.items():
        zeroed = rec.get("zeroed")
        if zeroed:
            layer = layers[name]
            variable = getattr(layer, get_handler(layer).scaling_factor(layer))
            value = keras.ops.convert_to_numpy(variable)
            saved.append((variable, value.copy()))
            value[zeroed] = 0.0
            variable.assign(value)
    try:
        return _numpy(model(x, training=False))
    finally:
        for variable, value in saved:
            variable.assign(value)


def sample_inputs(model, n=2, seed=0):
    """`n` reproducible standard-normal samples for each of the model's inputs (axes of unknown size get
    32), in the structure the model takes; integer inputs get zeros."""
    rng = np.random.default_rng(seed)
    xs = []
    for tensor in model.inputs:
        shape = (n,) + tuple(_UNKNOWN_SIZE if d is None else int(d) for d in tensor.shape[1:])
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        xs.append(rng.standard_normal(shape).astype(dtype) if "float" in dtype else np.zeros(shape, dtype))
    return xs[0] if len(xs) == 1 else xs


def check(model, pruned, plan, compare=True, original=None):
    """Raises a `ValueError` unless `pruned` runs on inputs of `model`'s shape and (with `compare`) computes
    what `model` computes with the factors `plan` prunes set to zero, within `TOLERANCE`. With `original`
    (the user's model, of which `model` is the flattened copy), the masked model is `original` itself
    wherever it has every layer the plan zeroes, so that a wrong copy is found too."""
    if original is not None and original is not model:
        names = _layers(original)
        if all(name in names for name, rec in plan.layers.items() if rec.get("zeroed")):
            model = original
    x = sample_inputs(model)
    try:
        got = _numpy(pruned(x, training=False))
    except Exception as error:  # noqa: BLE001 - whatever fails, the model is not one to return
        raise ValueError(
            f"The pruned '{model.name}' cannot run on inputs of the model's shape ({_shapes(x)}): "
            f"{first_line(error)}. kslim does not return a model it could not run; exclude the layer named "
            "there from pruning (exclude=[...]) or register a handler for it (kslim.pruning.register_handler)."
        ) from error
    if not compare:
        return
    want = masked_output(model, plan, x)
    scale = max((float(np.abs(w).max()) for w in want if w.size), default=0.0)
    diff = max((float(np.abs(w.astype(np.float64) - g).max()) for w, g in zip(want, got) if w.size), default=0.0)
    if len(want) != len(got) or diff > TOLERANCE * max(scale, 1e-12):
        raise ValueError(
            f"The pruned '{model.name}' computes something else than the masked model: max |difference| "
            f"{diff:.3g} for outputs of scale {scale:.3g}, beyond {TOLERANCE:g} of it. kslim does not return "
            "such a model; prune with compensate='interior' or compensate=False if that is acceptable, or "
            "exclude the layers whose channels differ, and report the model to kslim."
        )


def _layers(model):
    """`{name: layer}` of every layer in `model`, inside nested models and composite layers too."""
    return {layer.name: layer for layer in keras_api.all_layers(model)}


def _numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in keras.tree.flatten(outputs)]


def _shapes(x):
    return ", ".join(str(tuple(a.shape)) for a in (x if isinstance(x, list) else [x]))
