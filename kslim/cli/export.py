"""`export_file`: export a saved `.keras` model file; what `bin/kslim-export` runs."""

import os

from kslim._internal.files import check_name, load_model, same_file
from kslim.deploy.convert import _CALIBRATION_SAMPLES, QUANTIZE_MODES
from kslim.deploy.exporter import FORMATS, export


def export_file(
    model_path,
    output,
    format="tflite",
    quantize=None,
    data=None,
    limit=1000,
    normalize=True,
    int8_io=False,
    overwrite=False,
    selections="auto",
    atol=None,
):
    """Loads a `.keras` file and exports it with `kslim.export`.

    Use it from scripts and the `kslim-export` command when the model is on
    disk. The file is loaded with Keras's safe mode on (kslim's layers are
    registered serializables, so pruned models load without
    `safe_mode=False`). Arguments are checked before the model is loaded, so
    mistakes fail fast and nothing is written.

    Args:
        model_path: str, the `.keras` file to export.
        output: str, the `.tflite` file or SavedModel directory to write.
        format: str, `"tflite"` or `"saved_model"`.
        quantize: str or None, `None` (or `"none"`/`"float32"`), `"float16"`,
            `"dynamic"` or `"int8"`.
        data: optional str, a dataset name or path that `kslim.data.load`
            reads (`"mnist"`, a Keras-style `.npz`, a CIFAR folder, an image
            folder, ...): its `"train"` split calibrates int8 (first 200
            samples), its `"test"` split (first `limit` samples) checks parity
            and accuracy. The images get `kslim.data.load`'s preprocessing, so
            they match a model trained on `kslim.data.load`.
        limit: int, how many test samples to compare on.
        normalize: bool, per-channel mean/std normalisation as in
            `kslim.data.load`; False gives pixels in [0, 1].
        int8_io: bool, int8 inputs and outputs for `quantize="int8"`.
        overwrite: bool, replace an existing `output`.
        selections: how channel selections are written to TFLite (`"auto"`,
            `"slices"`, `"fold"` or `"gather"`; see `kslim.export`).
        atol: optional float, the bound on `max|y_keras - y_exported|` that
            replaces the default parity rule (see `kslim.export`).

    Returns:
        The `ExportReport` of `kslim.export`.

    Raises:
        FileNotFoundError: if `model_path` or the dataset does not exist.
        FileExistsError: if `output` exists and `overwrite` is False.
        ValueError: if `output` is `model_path`, the file is not a Keras
            model, or for any reason `kslim.export` gives.

    Example:

    >>> report = export_file("slim.keras", "slim.tflite", quantize="int8", data="mnist")
    """
    model_path, output = os.fspath(model_path), os.fspath(output)
    if quantize in ("none", "float32"):
        quantize = None
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; use one of {FORMATS}.")
    if quantize not in QUANTIZE_MODES:
        raise ValueError(
            f"quantize={quantize!r} is not supported; use none (float32), float16, dynamic or int8."
        )
    if not os.path.isfile(model_path):
        raise FileNotFoundError(f"No model file at '{model_path}'; check the --model path.")
    if same_file(output, model_path):
        raise ValueError(
            f"The output {output} is the input model file; choose another output path."
        )
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Cannot write {output}: the folder {folder} does not exist; create it first.")
    check_name(output)  # a SavedModel folder's name too: TensorFlow would fail with a 35-line traceback
    if os.path.lexists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists; pass --overwrite to replace it.")
    if quantize == "int8" and data is None:
        raise ValueError(
            "quantize='int8' needs calibration data; pass --data with a dataset name or path (e.g. --data mnist)."
        )
    representative = validation = None
    if data is not None:
        from kslim.data import load

        def read(split, count):
            return load(
                data, split, batch_size=256, augment=False, shuffle=False,
                normalize=normalize, limit=count,
            )  # fmt: skip

        representative = read("train", _CALIBRATION_SAMPLES)
        validation = read("test", limit)
    model = load_model(model_path)
    return export(
        model,
        output,
        format=format,
        quantize=quantize,
        representative_data=representative,
        validation_data=validation,
        int8_io=int8_io,
        overwrite=overwrite,
        selections=selections,
        atol=atol,
    )
