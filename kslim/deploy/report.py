"""`ExportReport`: what `kslim.export` wrote and how closely it matches the Keras model."""

_FIELDS = (
    "path",
    "format",
    "quantize",
    "int8_io",
    "size_bytes",
    "ops",
    "parity_data",
    "num_samples",
    "max_abs_diff",
    "output_scale",
    "tolerance",
    "keras_accuracy",
    "exported_accuracy",
    "agreement",
)


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

    Example:

    >>> report = kslim.export(model, "slim.tflite")
    >>> report.size_bytes, report.max_abs_diff
    >>> print(report)
    """

    def __init__(self, **fields):
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TypeError(f"ExportReport got unknown fields {sorted(unknown)}; known: {list(_FIELDS)}.")
        for name in _FIELDS:
            setattr(self, name, fields.get(name))

    def to_dict(self):
        """Returns the fields as a plain dict (JSON-serialisable)."""
        return {name: getattr(self, name) for name in _FIELDS}

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
        lines.append(
            f"  parity          max |diff| {self.max_abs_diff:.3g} <= {self.tolerance:.3g} "
            f"(output scale {self.output_scale:.3g}) on {self.num_samples} {self.parity_data} inputs"
        )
        if self.agreement is not None:
            lines.append(f"  same class      {100 * self.agreement:.2f}%")
        if self.keras_accuracy is not None:
            lines.append(
                f"  accuracy        keras {100 * self.keras_accuracy:.2f}%  "
                f"exported {100 * self.exported_accuracy:.2f}%"
            )
        return "\n".join(lines)
