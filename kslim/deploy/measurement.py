"""`Measurement`: size, latency and memory of one TFLite model, as `kslim.measure` found them."""

_FIELDS = (
    "name",
    "path",
    "size_bytes",
    "input_shape",
    "runs",
    "warmup",
    "latency_ms",
    "memory_bytes",
    "peak_rss_bytes",
    "baseline_rss_bytes",
)


class Measurement:
    """What `kslim.measure` found for one model.

    Attributes:
        name: str, the model's name (file stem or Keras model name).
        path: str or None, the `.tflite` file measured (None for a Keras
            model converted in a temporary directory).
        size_bytes: int, the `.tflite` file size.
        input_shape: tuple of int, the single input timed (batch 1).
        runs: int, timed runs per thread count.
        warmup: int, untimed runs before them.
        latency_ms: dict `{threads: {"median", "p10", "p90", "mean"}}` in ms.
        memory_bytes: int or None, `peak_rss_bytes - baseline_rss_bytes`.
        peak_rss_bytes: int or None, peak RSS of a process that loaded the
            model and ran it.
        baseline_rss_bytes: int or None, peak RSS of one that only imported
            the LiteRT interpreter.

    Example:

    >>> m = kslim.measure("slim.tflite")
    >>> m.latency_ms[1]["median"], m.memory_bytes
    >>> print(m)
    """

    def __init__(self, **fields):
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TypeError(f"Measurement got unknown fields {sorted(unknown)}; known: {list(_FIELDS)}.")
        for name in _FIELDS:
            setattr(self, name, fields.get(name))

    def to_dict(self):
        """Returns the fields as a plain dict (`json.dumps` writes the thread counts as str keys)."""
        return {name: getattr(self, name) for name in _FIELDS}

    def rows(self):
        """Returns `[(label, value), ...]` strings: the table's rows, for side-by-side printing."""
        rows = [("size", f"{self.size_bytes / 1024:,.1f} KiB")]
        for threads, stats in self.latency_ms.items():
            rows.append(
                (
                    f"latency {threads} thread{'s' if threads > 1 else ''}",
                    f"{stats['median']:.3f} ms [{stats['p10']:.3f}, {stats['p90']:.3f}]",
                )
            )
        if self.memory_bytes is not None:
            rows.append(("run-time memory", f"{self.memory_bytes / 2**20:,.2f} MiB"))
        return rows

    def __repr__(self):
        return f"Measurement(name={self.name!r}, size_bytes={self.size_bytes})"

    def __str__(self):
        header = f"{self.name}: input {self.input_shape}, median [p10, p90] of {self.runs} runs"
        return "\n".join([header] + [f"  {label:<20}{value}" for label, value in self.rows()])
