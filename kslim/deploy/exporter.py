"""`export`: write a Keras model as a SavedModel or TFLite file and prove it computes the same thing."""

import dataclasses
import os
import shutil
import warnings

import keras

from kslim._internal import files as _files
from kslim._internal.formatting import human
from kslim.deploy import convert as _convert
from kslim.deploy import lowering as _lowering
from kslim.deploy import precision as _precision
from kslim.deploy import samples as _samples
from kslim.deploy import parity as _parity
from kslim.deploy.ops import builtin_ops, list_ops

FORMATS = ("tflite", "saved_model")

# Parity inputs drawn from representative_data when no validation_data is given.
_PARITY_SAMPLES = 1000


def export(
    model,
    path,
    format="tflite",
    quantize=None,
    representative_data=None,
    validation_data=None,
    atol=None,
    int8_io=False,
    overwrite=False,
    selections="auto",
):
    """Exports a Keras model to TFLite or a SavedModel, checked against Keras.

    Use it on a pruned (or any) single-input, single-output Keras model to
    ship it to phones (`"tflite"`) or to TensorFlow Serving (`"saved_model"`).
    The export runs on the same inputs as the Keras model and is refused when
    the outputs differ beyond a tolerance, so a file that exists is a file that
    was checked. TFLite files use builtin operators only (no TensorFlow "Flex"
    ops): they run on the stock LiteRT runtime; kslim's `ChannelSelect` layers
    become static slices or zero weights (`selections`), a `GATHER` only with
    `selections="gather"`.

    Quantization (`format="tflite"` only):

    - `None`: float32 weights and math.
    - `"float16"`: float16 weights (half the size), float32 math on CPU.
    - `"dynamic"`: int8 weights, activations quantized on the fly.
    - `"int8"`: full integer, calibrated on the first 200 samples of
      `representative_data` (required). Inputs and outputs stay float32 (the
      model quantizes them itself) unless `int8_io=True`, which makes them
      int8 tensors with the scale and zero point found in the interpreter's
      input/output details, as int8-only accelerators want.

    Parity inputs are `validation_data` if given, else up to 1000 samples of
    `representative_data`, else 32 deterministic standard-normal inputs. The
    default tolerance is relative to the output scale `max|y_keras|`: 1e-5 for
    a SavedModel, 1e-4 for float32, 1e-2 for float16, 0.1 for dynamic and 0.2
    for int8; with labelled `validation_data`, dynamic and int8 exports must
    also lose at most 1 accuracy point. `atol` replaces all of this with
    `max|y_keras - y_exported| <= atol`.

    The output is written to a temporary name in the same directory, checked,
    then moved into place with `os.replace`: a failed export leaves nothing
    behind.

    Reference: Jacob et al., "Quantization and Training of Neural Networks for
    Efficient Integer-Arithmetic-Only Inference", CVPR 2018 (the int8 scheme).

    Args:
        model: a built functional or Sequential `keras.Model` with one input
            and one output.
        path: str or os.PathLike, the `.tflite` file or SavedModel directory
            to write. Its directory must exist.
        format: str, `"tflite"` (default) or `"saved_model"`.
        quantize: str or None, `None`, `"float16"`, `"dynamic"` or `"int8"`.
        representative_data: calibration inputs: a NumPy array of inputs, an
            `(x, y)` tuple, or a finite `tf.data.Dataset` of `x` or `(x, y)`,
            batched or not.
        validation_data: labelled data `(x, y)` (arrays or a finite
            `tf.data.Dataset` of `(x, y)`) on which to compare outputs and
            top-1 accuracy; labels are class ids or one-hot.
        atol: optional float, an absolute bound on the output difference that
            replaces the default rule.
        int8_io: bool, int8 inputs and outputs for `quantize="int8"`.
        overwrite: bool, replace an existing `path`.
        selections: how a TFLite file holds the model's `ChannelSelect`
            layers: `"auto"` (whichever the measured cost model
            `kslim.pruning.budget.selection_lowering`, int8's when
            `quantize` is "int8", predicts fastest at 1 and at 2
            interpreter threads: a static slice per run
            of consecutive channels, at most 4; one slice over the span
            from the first kept channel to the last, zero weights for the
            dropped ones inside it; or zero weights for every dropped
            channel, the reader convolving the whole stream),
            `"slices"`, `"fold"` or `"gather"` (one TFLite GATHER each).

    Returns:
        An `ExportReport` with the path, format, size, operators, output
        difference and accuracies; `print` it for a summary, `to_dict()` for
        logging.

    Raises:
        TypeError: if `model` is not a Keras model or the data has the wrong type.
        ValueError: for a bad `format`/`quantize`, int8 without
            `representative_data`, a model with several inputs or outputs, a
            conversion that needs non-builtin ops, or an export that fails the
            parity check.
        FileExistsError: if `path` exists and `overwrite` is False.
        FileNotFoundError: if the directory of `path` does not exist.

    Example:

    >>> report = kslim.export(slim, "slim.tflite", quantize="int8",
    ...                       representative_data=x_train[:500],
    ...                       validation_data=(x_test, y_test))
    >>> print(report)
    """
    _check_model(model)
    path = _check_arguments(path, format, quantize, representative_data, int8_io, overwrite, selections)
    policy = _precision.mixed_policy(model)
    if policy is not None and format == "tflite":
        # The converter fails on a mixed policy's float16 casts ("no TFLite builtin kernel: AddV2, Conv2D, ...").
        warnings.warn(
            f"Model '{model.name}' computes in {policy}: the TFLite file is exported from a float32 copy with "
            "the same weights, and checked against that copy (quantize='float16' or 'int8' gives a smaller file).",
            stacklevel=2)
        model = _precision.float32_copy(model)
    x_rep, _ = _samples._as_arrays(representative_data, model, "representative_data", _PARITY_SAMPLES)
    x_val, y_val = _samples._as_arrays(validation_data, model, "validation_data")
    if x_val is not None:
        x, y, source = x_val, y_val, "validation_data"
    elif x_rep is not None:
        x, y, source = x_rep, None, "representative_data"
    else:
        x, y, source = _parity._random_inputs(model), None, "random"

    mode, selections = selections, None
    if format == "tflite":
        with _lowering.lowered(model, mode, quantize, count_flops=True) as (target, selections):
            content = _convert._tflite_bytes(target, quantize, x_rep, int8_io)
        flops_added = selections.pop("flops_added")
        if not any(selections.values()):
            selections, flops_added = None, None
        ops = list_ops(content)
        foreign = [op for op in ops if op not in builtin_ops()]
        if foreign:
            raise ValueError(
                f"The TFLite model of '{model.name}' needs non-builtin ops {foreign}; replace the layers "
                "that use them with standard Keras layers."
            )
    else:
        content = ops = flops_added = None

    y_keras = _parity._run_keras(model, x)
    directory = os.path.dirname(path) or "."
    staging = _files.temp_path(directory, suffix=".tmp", directory=True)
    try:
        staged = os.path.join(staging, os.path.basename(path))
        if format == "tflite":
            with open(staged, "wb") as f:
                f.write(content)
            y_exported = _parity._run_tflite(staged, x)
            size = os.path.getsize(staged)
        else:
            _convert._write_saved_model(model, staged)
            y_exported = _parity._run_saved_model(staged, x)
            size = _tree_size(staged)
        stats, failure = _parity._compare(y_keras, y_exported, y, format, quantize, atol)
        if failure is not None:
            raise ValueError(
                f"Export of model '{model.name}' to {path} ({format}, quantize={quantize!r}) failed the "
                f"parity check on {len(x)} {source} inputs: {failure}{_parity._classes(stats)}. Nothing was "
                "written; check the data matches the model's preprocessing, or pass a looser atol "
                f"(atol={_parity._passing_atol(stats)} would pass)."
            )
        _commit(staged, path, staging)
    except Exception as error:
        if _files.is_disk_full(error):  # TensorFlow's SaveV2 reports it as ResourceExhaustedError
            raise _files.disk_full_error(path) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(
        path=path,
        format=format,
        quantize=quantize,
        int8_io=bool(int8_io),
        size_bytes=size,
        ops=ops,
        parity_data=source,
        selections=selections,
        flops_added=flops_added,
        num_samples=len(x),
        **stats,
    )


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"kslim.export needs a keras.Model, got {type(model).__name__}; load one with "
            "keras.saving.load_model first."
        )
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise ValueError(
            f"Model '{model.name}' has no defined inputs (a subclassed or unbuilt model); build it with "
            "the functional API or give the Sequential model a keras.Input."
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"Model '{model.name}' has {len(inputs)} inputs and {len(outputs)} outputs; kslim.export "
            "checks single-input, single-output models. Wrap it in a model with one of each."
        )


def _check_arguments(path, format, quantize, representative_data, int8_io, overwrite, selections):
    if format not in FORMATS:
        raise ValueError(f"format={format!r} is not supported; use one of {FORMATS}.")
    if selections not in _lowering.MODES:
        raise ValueError(f"selections={selections!r} is not supported; use one of {_lowering.MODES}.")
    if quantize not in _convert.QUANTIZE_MODES:
        raise ValueError(
            f"quantize={quantize!r} is not supported; use one of {_convert.QUANTIZE_MODES}."
        )
    if format == "saved_model" and quantize is not None:
        raise ValueError(
            f"quantize={quantize!r} applies to TFLite only; use format='tflite' or quantize=None."
        )
    if quantize == "int8" and representative_data is None:
        raise ValueError(
            "quantize='int8' needs representative_data (a few hundred training inputs) to calibrate "
            "activation ranges; pass representative_data=x_train[:500]. Do not calibrate on the "
            "validation data, or its accuracy will flatter the model."
        )
    if int8_io and quantize != "int8":
        raise ValueError(f"int8_io=True needs quantize='int8', got quantize={quantize!r}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    path = os.fspath(path)
    if format == "tflite" and not path.endswith(".tflite"):
        raise ValueError(f"The TFLite output path '{path}' must end in '.tflite'.")
    if os.path.lexists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it.")
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise FileNotFoundError(
            f"The directory '{directory}' of the output path does not exist; create it first."
        )
    return path


def _commit(staged, path, staging):
    """Moves the checked output into place; an old file or directory there goes to the staging area."""
    replaced_directory = os.path.isdir(path) and not os.path.islink(path)
    if replaced_directory or (os.path.lexists(path) and os.path.isdir(staged)):
        os.replace(path, os.path.join(staging, ".previous"))
    os.replace(staged, path)


def _tree_size(directory):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, names in os.walk(directory)
        for name in names
    )


@dataclasses.dataclass
class ExportReport:
    """The result of `kslim.export`: file, size, operators and parity numbers.

    Attributes:
        path: str, the file (TFLite) or directory (SavedModel) written.
        format: str, `"tflite"` or `"saved_model"`.
        quantize: str or None, `None`, `"float16"`, `"dynamic"` or `"int8"`.
        int8_io: bool, whether an int8 model takes and returns int8 tensors.
        size_bytes: int, the file size (for a SavedModel, all its files).
        ops: list of str or None, the TFLite operators (None for a SavedModel).
        parity_data: str, where the parity inputs came from:
            `"validation_data"`, `"representative_data"` or `"random"`.
        num_samples: int, how many inputs were compared.
        max_abs_diff: float, max |Keras output - exported output|.
        output_scale: float, max |Keras output| over the same inputs.
        tolerance: float, the bound `max_abs_diff` had to meet.
        keras_accuracy: float or None, top-1 accuracy of the Keras model on
            labelled `validation_data`.
        exported_accuracy: float or None, the same for the exported model.
        agreement: float or None, the fraction of inputs on which both models
            predict the same class (class-score outputs only).
        selections: dict or None, for a TFLite file of a model with channel
            selections: how many were written as slices of their runs
            (`"sliced"`), as one slice over their span with zero weights for
            the dropped channels inside it (`"spanned"`), folded into zero
            weights (`"folded"`) or as GATHERs (`"gathered"`).
        flops_added: int or None, for a TFLite file of a model with channel
            selections: the FLOPs the file computes beyond what
            `kslim.profile` counts for the model, because a folded or spanned
            selection's reader convolves the channels it dropped (zero
            weights). A plan made with `runtime="litert"` keeps only the
            selections the file slices, so it adds none.

    Example:

    >>> report = kslim.export(model, "slim.tflite")
    >>> report.size_bytes, report.max_abs_diff
    >>> print(report)
    """

    path: str = None
    format: str = None
    quantize: str = None
    int8_io: bool = None
    size_bytes: int = None
    ops: list = None
    parity_data: str = None
    num_samples: int = None
    max_abs_diff: float = None
    output_scale: float = None
    tolerance: float = None
    keras_accuracy: float = None
    exported_accuracy: float = None
    agreement: float = None
    selections: dict = None
    flops_added: int = None

    def to_dict(self):
        """Returns the fields as a plain dict (for `json.dumps`)."""
        return dataclasses.asdict(self)

    def __repr__(self):
        return f"ExportReport(path={self.path!r}, format={self.format!r}, quantize={self.quantize!r})"

    def __str__(self):
        kind = self.format if self.format == "saved_model" else f"tflite {self.quantize or 'float32'}"
        if self.int8_io:
            kind += " (int8 input/output)"
        lines = [
            f"Exported {self.path} ({kind})",
            f"  size            {self.size_bytes:,} bytes ({self.size_bytes / 2**20:.2f} MiB)",
        ]
        if self.ops is not None:
            lines.append(f"  ops             {', '.join(self.ops)}")
        if self.selections:
            counts = self.selections
            text = f"{counts['sliced']} as slices, {counts['folded']} folded into zero weights"
            text += f", {counts['spanned']} as one slice over their span" if counts.get("spanned") else ""
            text += f", {counts['gathered']} as GATHER" if counts.get("gathered") else " (no GATHER)"
            lines.append(f"  selections      {text}")
        if self.flops_added:
            lines.append(f"  FLOPs           {human(self.flops_added)} more than kslim.profile counts for the model: "
                         "the readers of folded or spanned selections convolve the dropped channels (plan with "
                         "runtime='litert' to keep only selections the file slices)")
        lines.append(
            f"  parity          max |diff| {self.max_abs_diff:.3g} <= {self.tolerance:.3g} "
            f"(output scale {self.output_scale:.3g}) on {self.num_samples} {self.parity_data} inputs"
        )
        if self.agreement is not None:
            lines.append(
                f"  same class      {100 * self.agreement:.2f}% of the {self.num_samples} {self.parity_data} "
                "inputs get the same class from Keras and from the file"
            )
        if self.keras_accuracy is not None:
            lines.append(
                f"  accuracy        keras {100 * self.keras_accuracy:.2f}%  "
                f"exported {100 * self.exported_accuracy:.2f}% (the file's, on the labels of "
                f"{self.parity_data})"
            )
        return "\n".join(lines)
