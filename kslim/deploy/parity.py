"""Parity between a Keras model and its export: run both on the same inputs and compare.

Default tolerances are relative to the output scale `max|y_keras|` over the
parity inputs, so that logits and probabilities are judged alike:

| export              | max abs difference ≤ | with labels, also           |
|---------------------|----------------------|-----------------------------|
| SavedModel          | 1e-5 × scale         |                             |
| TFLite float32      | 1e-4 × scale         |                             |
| TFLite float16      | 1e-2 × scale         |                             |
| TFLite dynamic      | 0.1 × scale          | accuracy drop ≤ 1 pt        |
| TFLite int8         | 0.2 × scale          | accuracy drop ≤ 1 pt        |

Quantized models are judged mainly by accuracy: a few outputs can move by a
sizeable fraction of the scale while the predicted classes stay the same.
An explicit `atol` replaces the whole rule with `max abs difference ≤ atol`.
"""

import math

import keras
import numpy as np

_RELATIVE_TOLERANCE = {
    ("saved_model", None): 1e-5,
    ("tflite", None): 1e-4,
    ("tflite", "float16"): 1e-2,
    ("tflite", "dynamic"): 0.1,
    ("tflite", "int8"): 0.2,
}
_MAX_ACCURACY_DROP = 0.01
_BATCH = 256


def _random_inputs(model, count=32, seed=0):
    shape = tuple(model.inputs[0].shape)[1:]
    if any(d is None for d in shape):
        raise ValueError(
            f"Model '{model.name}' takes inputs of shape {(None,) + shape} with unknown sizes, so kslim "
            "cannot make test inputs; pass representative_data or validation_data."
        )
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count,) + shape).astype(model.inputs[0].dtype)


def _run_keras(model, x):
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(model(x[i : i + _BATCH], training=False))
            for i in range(0, len(x), _BATCH)
        ]
    )


def _run_tflite(path, x, num_threads=None):
    """Runs a `.tflite` file on `x` in batches, quantizing int8 inputs and dequantizing int8 outputs."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=path, num_threads=num_threads)
        (inp,) = interpreter.get_input_details()
        (out,) = interpreter.get_output_details()
        outputs = []
        for i in range(0, len(x), _BATCH):
            chunk = x[i : i + _BATCH]
            interpreter.resize_tensor_input(inp["index"], list(chunk.shape))
            interpreter.allocate_tensors()
            interpreter.set_tensor(inp["index"], _quantize(chunk, inp))
            interpreter.invoke()
            outputs.append(_dequantize(interpreter.get_tensor(out["index"]), out))
    except RuntimeError as error:
        # The converter can emit a model that LiteRT then refuses (seen with tf.math.lgamma).
        detail = " ".join(str(error).split())[:300].rstrip(".")
        raise ValueError(
            f"The converted TFLite model does not run in the LiteRT interpreter: {detail}. "
            "Replace the layer behind the failing node with standard Keras layers."
        ) from error
    return np.concatenate(outputs)


def _quantize(x, detail):
    if not np.issubdtype(detail["dtype"], np.integer):
        return x.astype(detail["dtype"])
    scale, zero_point = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _dequantize(y, detail):
    if not np.issubdtype(detail["dtype"], np.integer):
        return y.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (y.astype(np.float32) - zero_point) * scale


def _run_saved_model(path, x):
    """Loads the SavedModel with `tf.saved_model.load` and calls its `serving_default` signature."""
    import tensorflow as tf

    serving = tf.saved_model.load(path).signatures["serving_default"]
    (name,) = serving.structured_input_signature[1].keys()
    outputs = []
    for i in range(0, len(x), _BATCH):
        result = serving(**{name: tf.constant(x[i : i + _BATCH])})
        (value,) = result.values()
        outputs.append(value.numpy())
    return np.concatenate(outputs)


def _accuracy(y_pred, y_true):
    """Top-1 accuracy for class scores `(N, C>1)`, labels as ids or one-hot; None otherwise."""
    if y_true is None or y_pred.ndim != 2 or y_pred.shape[1] < 2:
        return None
    y_true = np.asarray(y_true)
    if y_true.ndim == 2 and y_true.shape[1] > 1:
        y_true = y_true.argmax(axis=1)
    y_true = y_true.reshape(-1)
    outside = (y_true < 0) | (y_true >= y_pred.shape[1])
    if outside.any():
        index = int(np.argmax(outside))
        raise ValueError(
            f"validation_data: label {y_true[index]} of example {index} is not a class of the model, which "
            f"outputs {y_pred.shape[1]} classes (labels 0..{y_pred.shape[1] - 1}); pass the test split of the "
            "data the model was trained on."
        )
    return float(np.mean(y_pred.argmax(axis=1) == y_true))


def _passing_atol(stats):
    """The smallest round atol that the measured difference passes (for the failure's message)."""
    diff = stats["max_abs_diff"]
    if not diff > 0:
        return "0"
    step = 10.0 ** (math.floor(math.log10(diff)) - 1)  # two significant digits, rounded up
    return f"{math.ceil(diff / step * (1 + 1e-9)) * step:.3g}"


def _classes(stats):
    """'; the same class on 99.80% of them, ...' for class-score outputs, else ''."""
    text = ""
    if stats.get("agreement") is not None:
        text += f"; Keras and the file give the same class on {100 * stats['agreement']:.2f}% of them"
    if stats.get("exported_accuracy") is not None:
        text += (f", the file's accuracy is {100 * stats['exported_accuracy']:.2f}% "
                 f"(Keras {100 * stats['keras_accuracy']:.2f}%)")
    return text


def _compare(y_keras, y_exported, y_true, format, quantize, atol):
    """Returns the parity numbers and the failure message (None if within tolerance)."""
    diff = float(np.max(np.abs(y_keras.astype(np.float64) - y_exported.astype(np.float64))))
    scale = float(np.max(np.abs(y_keras)))
    keras_accuracy = _accuracy(y_keras, y_true)
    exported_accuracy = _accuracy(y_exported, y_true)
    agreement = None
    if y_keras.ndim == 2 and y_keras.shape[1] > 1:
        agreement = float(np.mean(y_keras.argmax(axis=1) == y_exported.argmax(axis=1)))
    if atol is None:
        rtol = _RELATIVE_TOLERANCE[(format, quantize)]
        tolerance = rtol * max(scale, np.finfo(np.float32).tiny)
        rule = f"{rtol:g} x output scale {scale:.4g}"
    else:
        tolerance, rule = float(atol), "atol"
    stats = {
        "max_abs_diff": diff,
        "output_scale": scale,
        "tolerance": tolerance,
        "keras_accuracy": keras_accuracy,
        "exported_accuracy": exported_accuracy,
        "agreement": agreement,
    }
    if not diff <= tolerance:
        return stats, (
            f"max |keras - exported| = {diff:.4g} exceeds the tolerance {tolerance:.4g} ({rule})"
        )
    if atol is None and quantize in ("dynamic", "int8") and keras_accuracy is not None:
        drop = keras_accuracy - exported_accuracy
        if drop > _MAX_ACCURACY_DROP:
            return stats, (
                f"accuracy fell from {keras_accuracy:.4f} (Keras) to {exported_accuracy:.4f} (exported), "
                f"more than {_MAX_ACCURACY_DROP:.2f}"
            )
    return stats, None
