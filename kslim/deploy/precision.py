"""Mixed-precision models exported as float32: TFLite's converter has no kernels for their float16 casts."""

import keras

from kslim._internal import keras_api


def mixed_policy(model):
    """The name of the first non-float32 compute policy among `model`'s layers (`"mixed_float16"`,
    `"mixed_bfloat16"`, ...), or None."""
    for layer in [model, *keras_api.all_layers(model)]:
        policy = getattr(layer, "dtype_policy", None)
        compute = getattr(policy, "compute_dtype", "float32")
        if compute not in ("float32", None):
            return getattr(policy, "name", compute)
    return None


def float32_copy(model):
    """A copy of `model` whose every layer computes in float32, with the same weights (a mixed policy keeps
    its variables in float32, so they copy as they are). Export converts this copy: TFLite runs float32
    (its own `quantize` modes make smaller files), and the converter cannot lower the casts to float16 that
    a mixed policy puts around every layer."""

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    if isinstance(model, keras.Sequential):
        copy = keras.models.clone_model(model, clone_function=clone)
    else:
        copy = keras.models.clone_model(keras.Model(model.inputs, model.outputs, name=model.name),
                                        clone_function=clone)
    copy.set_weights([keras.ops.convert_to_numpy(w).astype("float32") for w in model.get_weights()])
    return copy
