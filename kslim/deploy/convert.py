"""Conversion of a Keras model to a SavedModel directory or TFLite flatbuffer bytes."""

import os
import re
import shutil
import tempfile

import numpy as np

from kslim._internal import files as _files
from kslim.pruning.budget import QUANTIZE_MODES  # noqa: F401  (one list for export and plans)

# Calibration samples for full-integer quantization: the TFLite guides use 100-500;
# more only slows conversion down.
_CALIBRATION_SAMPLES = 200


def _write_saved_model(model, path):
    """Writes `model`'s inference function (`serve`/`serving_default`) to the directory `path`."""
    model.export(path, format="tf_saved_model", verbose=False)


def _tflite_bytes(model, quantize, representative_x, int8_io=False):
    """Converts `model` to TFLite with builtin ops only and returns the flatbuffer.

    The model goes through Keras's own SavedModel export (`model.export`), which
    freezes the variables; converting a traced function directly keeps
    `VAR_HANDLE`/`READ_VARIABLE` ops that break int8 calibration.
    """
    import tensorflow as tf

    tmp = _files.temp_path(tempfile.gettempdir(), directory=True)
    try:
        saved = os.path.join(tmp, "saved_model")
        _write_saved_model(model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            samples = representative_x[:_CALIBRATION_SAMPLES]

            def representative_dataset():
                for i in range(len(samples)):
                    yield [samples[i : i + 1].astype(np.float32)]

            converter.representative_dataset = representative_dataset
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if int8_io:
                converter.inference_input_type = tf.int8
                converter.inference_output_type = tf.int8
        try:
            return converter.convert()
        except Exception as error:  # ConverterError and friends carry the MLIR diagnostics.
            raise ValueError(
                f"TFLite conversion of model '{model.name}' (quantize={quantize!r}) failed: "
                f"{_diagnose(error)}. Only builtin TFLite ops are allowed (no Flex/custom ops); "
                "replace the layer that uses them (often a Lambda or a custom layer) with standard "
                "Keras layers."
            ) from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _diagnose(error):
    """The unsupported TensorFlow ops named in a converter error, else its first line."""
    text = str(error)
    ops = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", text)))
    if ops:
        return f"it needs TensorFlow ops with no TFLite builtin kernel: {', '.join(ops)}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return first[:300]
