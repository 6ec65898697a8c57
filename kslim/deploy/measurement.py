"""`measure`: file size, single-image latency and run-time memory of a TFLite model on this CPU."""

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from kslim._internal import files as _files


# Runs in a fresh interpreter so that its peak RSS holds LiteRT and the model only (no TensorFlow,
# no Keras). With "-" it only imports, which gives the baseline to subtract.
_MEMORY_SCRIPT = """
import resource, sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
if sys.argv[1] != "-":
    interpreter = Interpreter(model_path=sys.argv[1], num_threads=int(sys.argv[2]))
    detail = interpreter.get_input_details()[0]
    shape = [1 if d < 0 else int(d) for d in detail["shape_signature"]]
    interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], np.zeros(shape, detail["dtype"]))
    for _ in range(3):
        interpreter.invoke()
try:
    # VmHWM is this process image's own peak; ru_maxrss would carry over the parent's peak
    # from before exec on Linux.
    with open("/proc/self/status") as f:
        print(next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:")))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(peak if sys.platform == "darwin" else peak * 1024)
"""


def measure(path_or_model, threads=(1, 2), runs=100, warmup=10, memory=True):
    """Measures a TFLite model's size, latency and memory with the LiteRT interpreter.

    Use it to see what pruning bought on a real CPU: compare the measurement
    of the baseline and of the slimmed model (`kslim.deploy.compare` prints
    them side by side). Latency is for one input (batch 1) with XNNPACK, the
    interpreter's default CPU delegate, at each thread count: `warmup`
    untimed runs, then `runs` timed `invoke()` calls, summarised by median,
    10th and 90th percentile. Memory is the peak resident set size of a fresh
    Python process that loads the model and runs it three times, minus the
    peak of one that only imports the interpreter: what the model itself costs
    (weights, tensor arena, delegate workspace), not the Python runtime.
    Numbers depend on the machine and its load; measure both models in the
    same session.

    Args:
        path_or_model: str or os.PathLike, a `.tflite` file; or a
            `keras.Model`, which is first exported to a float32 TFLite file in
            a temporary directory.
        threads: tuple of int, the interpreter thread counts to time.
        runs: int, timed runs per thread count.
        warmup: int, untimed runs before them.
        memory: bool, also measure run-time memory (two subprocesses,
            about a second).

    Returns:
        A `Measurement`: `size_bytes`, `latency_ms` (`{threads: {"median",
        "p10", "p90", "mean"}}`), `memory_bytes`; `print` it for a table.

    Raises:
        FileNotFoundError: if the path does not exist.
        ValueError: for a file that is not `.tflite`, bad `threads`, `runs`
            or `warmup`, or a model input with unknown sizes other than batch.

    Example:

    >>> print(kslim.measure("slim.tflite", threads=(1, 2), runs=50))
    """
    threads = tuple(threads)
    if not threads or not all(isinstance(t, int) and t > 0 for t in threads):
        raise ValueError(f"threads={threads!r} must be a non-empty tuple of positive ints, e.g. (1, 2).")
    if not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs={runs!r} must be a positive int.")
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup={warmup!r} must be an int >= 0.")
    if isinstance(path_or_model, (str, os.PathLike)):
        return _measure_file(os.fspath(path_or_model), threads, runs, warmup, memory)

    import keras

    if not isinstance(path_or_model, keras.Model):
        raise TypeError(
            f"kslim.measure takes a .tflite path or a keras.Model, got {type(path_or_model).__name__}."
        )
    from kslim.deploy.exporter import export

    tmp = _files.temp_path(tempfile.gettempdir(), directory=True)
    try:
        path = os.path.join(tmp, f"{path_or_model.name}.tflite")
        export(path_or_model, path)
        result = _measure_file(path, threads, runs, warmup, memory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.path = None
    result.name = path_or_model.name
    return result


def _measure_file(path, threads, runs, warmup, memory):
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory (a SavedModel?); kslim.measure times .tflite files.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No TFLite file at '{path}'; check the path.")
    if not path.endswith(".tflite"):
        raise ValueError(f"kslim.measure times .tflite files; '{path}' is not one. Export it first.")
    from ai_edge_litert.interpreter import Interpreter

    latency = {}
    input_shape = None
    for count in threads:
        interpreter = Interpreter(model_path=path, num_threads=count)
        detail = interpreter.get_input_details()[0]
        input_shape = _single_input_shape(detail, path)
        interpreter.resize_tensor_input(detail["index"], input_shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(detail["index"], _sample(input_shape, detail["dtype"]))
        for _ in range(warmup):
            interpreter.invoke()
        times = np.empty(runs)
        for i in range(runs):
            start = time.perf_counter()
            interpreter.invoke()
            times[i] = time.perf_counter() - start
        times *= 1e3
        latency[count] = {
            "median": float(np.median(times)),
            "p10": float(np.percentile(times, 10)),
            "p90": float(np.percentile(times, 90)),
            "mean": float(times.mean()),
        }
    peak = baseline = None
    if memory:
        baseline = _peak_rss("-", threads[0])
        peak = _peak_rss(path, threads[0])
    return Measurement(
        name=os.path.splitext(os.path.basename(path))[0],
        path=path,
        size_bytes=os.path.getsize(path),
        input_shape=tuple(input_shape),
        runs=runs,
        warmup=warmup,
        latency_ms=latency,
        peak_rss_bytes=peak,
        baseline_rss_bytes=baseline,
        memory_bytes=None if peak is None else max(peak - baseline, 0),
    )


def _single_input_shape(detail, path):
    signature = [int(d) for d in detail["shape_signature"]]
    if any(d < 0 for d in signature[1:]):
        raise ValueError(
            f"{path} takes inputs of shape {signature} with unknown sizes beyond the batch; "
            "export the model with a fixed input shape to time it."
        )
    return [1] + signature[1:] if signature else signature


def _sample(shape, dtype):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def _peak_rss(path, threads):
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, path, str(threads)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"The memory probe for {path} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}"
        )
    return int(result.stdout.strip().splitlines()[-1])


@dataclasses.dataclass
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

    name: str = None
    path: str = None
    size_bytes: int = None
    input_shape: tuple = None
    runs: int = None
    warmup: int = None
    latency_ms: dict = None
    memory_bytes: int = None
    peak_rss_bytes: int = None
    baseline_rss_bytes: int = None

    def to_dict(self):
        """Returns the fields as a plain dict (for `json.dumps`)."""
        return dataclasses.asdict(self)

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
