"""Measured LiteRT latency as a pruning budget: `kslim.prune(model, latency_target=0.5)`.

FLOPs do not say how long a pruned model takes on the phone runtime: a channel
selection that cannot be sliced is folded back into zero weights, small layers
are bound by overhead, XNNPACK packs weights its own way. So a latency budget
is met by measuring, not by a formula: `LatencyMeter` exports each candidate
the way `kslim.export` does (float32 TFLite, channel selections lowered, no
GATHER), times it with LiteRT's XNNPACK interleaved with the unpruned model in
this process, and reports the paired median ratio of their latencies. The
planner bisects the pruning ratio on that measured fraction, as it does on
FLOPs for `flops_target`.

Measurements are cached by what decides the latency (the model's
architecture, the pruned widths and selections, the thread count, the
LiteRT version and the CPU, not the weight values) in memory and in a JSON file under
`$KSLIM_CACHE_DIR` (default `~/.cache/kslim`), so a second plan of the same
model, or `kslim.prune` after `kslim.plan`, measures nothing again.

`channel_tile` measures the channel multiples XNNPACK's convolutions run in on
this CPU (of output channels, and with `inputs=True` of input channels);
latency-budgeted plans round pruned widths up to them by default, since the
channels inside a tile cost almost no time.
"""

import functools
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import time

import numpy as np

from kslim._internal import files as _files

_MEMORY_CACHE = {}
_TILES = {}  # kept apart: what a CPU runs does not change within a process


def cache_path():
    """The JSON file that keeps latency measurements between processes."""
    root = os.environ.get("KSLIM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "kslim")
    return os.path.join(root, "latency.json")


def _read_cache():
    try:
        with open(cache_path()) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _write_cache(entries):
    path = cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        staged = _files.temp_path(os.path.dirname(path))
        with open(staged, "w") as f:
            json.dump(entries, f)
        os.replace(staged, path)
    except OSError:
        pass  # a read-only home only costs the cache


def _cached(memory, key, measure):
    """`memory[key]`, else the JSON cache's entry, else `measure()` stored in both."""
    if key not in memory:
        stored = _read_cache()
        if key not in stored:
            value = measure()
            stored = _read_cache()  # another process may have written meanwhile
            stored[key] = value
            _write_cache(stored)
        memory[key] = stored[key]
    return memory[key]


def _runtime_version():
    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "?"


@functools.lru_cache(maxsize=None)
def cpu_info():
    """`(model name, instruction-set flags)` of this machine's CPU, from /proc/cpuinfo where there is one
    (empty strings elsewhere): what XNNPACK picks its kernels by."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return "", ""
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines) if v}
    return fields.get("model name", ""), fields.get("flags", fields.get("Features", ""))


def _cpu():
    """A short hash of what decides XNNPACK's kernels on this CPU, for the cache keys."""
    text = "".join(cpu_info()) or platform.processor() or platform.machine()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


TILE_CANDIDATES = (64, 32, 16, 8)
_PROBE_WIDTHS = (12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64, 72, 80, 96, 112, 128)
_PROBE_INPUT = (16, 16, 64)
_PROBE_INPUT_WIDTHS = (8, 12, 16, 24, 32, 40, 48, 56, 64, 72, 80, 96, 112, 128, 144, 160, 192)
_PROBE_OUTPUTS = 32


def channel_tile(threads=1, quantize=None, inputs=False, tolerance=0.2, rounds=40, block=5):
    """The channel multiple XNNPACK's convolutions run in on this CPU, measured once and cached.

    XNNPACK computes a convolution's output channels in tiles (of 8, 16 or 32
    floats, depending on the CPU's vector units; int8 kernels have tiles of
    their own), so pruning a layer to a width that is not a multiple saves
    nothing within the tile and can even cost time: on an AVX-512 server a 3x3
    convolution to 24 channels took 1.18x as long as one to 32. Input
    channels are the kernels' inner dimension: one by one in float32, but on
    a CPU with AMX the int8 kernels
    take them 64 at a time (a 3x3 int8 convolution of 8 input channels took
    0.85x the time of one of 64, one of 72 took 1.72x).

    This times a 3x3 convolution, interleaved, in a file quantized as
    `kslim.export(quantize=...)` writes it: of a 16x16x64 input to each of 12
    to 128 output channels, or with `inputs=True` of a 16x16 input of 8 to 192
    channels to 32. It returns the largest of `TILE_CANDIDATES` for which
    rounding every probed width up to a multiple adds at most `tolerance` of
    what a tile of channels would cost if time followed channels (the tile's
    share of the rounded width's time), or 1 when none does: the channels
    within a tile are nearly free, so a plan keeps them.
    Latency-budgeted plans use the float32 tiles as their default `round_to`
    and `round_inputs_to`. Cached like the latency measurements, by CPU,
    thread count, quantization, probe and LiteRT version.

    Args:
        threads: int, interpreter threads.
        quantize: None (float32) or one of `kslim.export`'s other modes.
        inputs: bool, the tile of input channels instead of output channels.
        tolerance: float, what rounding up may add, as a share of what a
            tile of channels would cost if time followed channels.
        rounds, block: interleaved rounds and invokes per width and round.

    Returns:
        int, the channel multiple (1: rounding does not pay on this CPU).

    Raises:
        ImportError: without `ai-edge-litert`.
    """
    key = "channel_tile:" + json.dumps([_cpu(), int(threads), _runtime_version(), float(tolerance)]
                                       + ([quantize] if quantize else []) + (["inputs"] if inputs else []))
    return _cached(_TILES, key, lambda: choose_tile(
        probe_times(threads, rounds, block, quantize=quantize, inputs=inputs), tolerance))


def choose_tile(times, tolerance=0.2):
    """The largest of `TILE_CANDIDATES` for which rounding each width of `{width: time}` up to a
    multiple adds at most `tolerance` of what a tile of channels would cost if time followed channels
    (a tile's share of the rounded width's time); 1 if none."""
    def cheap(w, t):
        up = math.ceil(w / t) * t
        return up not in times or times[up] - times[w] <= tolerance * times[up] * t / up

    return next((t for t in TILE_CANDIDATES if all(cheap(w, t) for w in times)), 1)


def probe_times(threads=1, rounds=40, block=5, widths=None, quantize=None, inputs=False):
    """Median milliseconds of a 3x3 convolution to each output width of `_PROBE_INPUT` (or, with
    `inputs=True`, of an input of each width to `_PROBE_OUTPUTS` channels), timed interleaved (float32,
    or as `kslim.export` quantizes with `quantize`)."""
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from kslim.deploy.convert import _tflite_bytes

    widths = widths or (_PROBE_INPUT_WIDTHS if inputs else _PROBE_WIDTHS)
    interpreters = {}
    rng = np.random.default_rng(0)
    for width in widths:
        shape = _PROBE_INPUT[:2] + (width,) if inputs else _PROBE_INPUT
        x = keras.Input(shape, batch_size=1)
        probe = keras.Model(x, keras.layers.Conv2D(_PROBE_OUTPUTS if inputs else width, 3, padding="same")(x))
        calibration = rng.standard_normal((20,) + shape).astype(np.float32) if quantize else None
        interpreter = Interpreter(model_content=_tflite_bytes(probe, quantize, calibration),
                                  num_threads=int(threads))
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], rng.standard_normal(detail["shape"]).astype(detail["dtype"]))
        for _ in range(5):
            interpreter.invoke()
        interpreters[width] = interpreter
    samples = {width: [] for width in widths}
    for _ in range(rounds):
        for width in rng.permutation(list(widths)):
            interpreter = interpreters[int(width)]
            for _ in range(block):
                start = time.perf_counter()
                interpreter.invoke()
                samples[int(width)].append(time.perf_counter() - start)
    return {width: float(np.median(t)) * 1e3 for width, t in samples.items()}


class LatencyMeter:
    """Latency of pruned variants of one model on LiteRT (XNNPACK), as a fraction of the model's own.

    Args:
        model: the unpruned `keras.Model` (single input, static input shape
            apart from the batch).
        threads: int, interpreter threads (1: the phone-like default).
        rounds: int, interleaved rounds; each times `block` invokes of the
            baseline and of the candidate, in alternating order.
        block: int, invokes per model and round.

    Raises:
        ImportError: without `ai-edge-litert` (`pip install ai-edge-litert`).
    """

    def __init__(self, model, threads=1, rounds=30, block=5):
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401 - fail early, with the package named

        self.model, self.threads, self.rounds, self.block = model, int(threads), int(rounds), int(block)
        self._baseline = None
        self._architecture = hashlib.sha256(model.to_json().encode()).hexdigest()[:16]
        self._runtime = _runtime_version()

    def key(self, plan):
        """What decides a candidate's latency: architecture, pruned widths and selections, threads, runtime, CPU."""
        layers = {name: [rec["channels"], rec["in"] is not None and [len(a) if a else None for a in rec["in"]],
                         rec["select"]] for name, rec in sorted(plan.layers.items())}
        text = json.dumps([self._architecture, layers, self.threads, self._runtime, _cpu()], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def fraction(self, plan, build):
        """Measured latency of `build()` (the model pruned by `plan`) over the unpruned model's.

        `build` is only called when the plan's latency is not cached.
        """
        return _cached(_MEMORY_CACHE, self.key(plan), lambda: self._time(build()))

    def _interpreter(self, model):
        from ai_edge_litert.interpreter import Interpreter

        from kslim.deploy.convert import _tflite_bytes
        from kslim.deploy.lowering import lowered

        with lowered(model) as (target, _):
            content = _tflite_bytes(target, None, None)
        interpreter = Interpreter(model_content=content, num_threads=self.threads)
        detail = interpreter.get_input_details()[0]
        shape = [1 if d < 0 else int(d) for d in detail["shape_signature"]]
        interpreter.resize_tensor_input(detail["index"], shape)
        interpreter.allocate_tensors()
        rng = np.random.default_rng(0)
        interpreter.set_tensor(detail["index"], rng.standard_normal(shape).astype(detail["dtype"]))
        for _ in range(10):
            interpreter.invoke()
        return interpreter

    def _time(self, slim):
        if self._baseline is None:
            self._baseline = self._interpreter(self.model)
        candidate = self._interpreter(slim)
        ratios = []
        for r in range(self.rounds):
            times = {}
            order = (self._baseline, candidate) if r % 2 == 0 else (candidate, self._baseline)
            for interpreter in order:
                samples = []
                for _ in range(self.block):
                    start = time.perf_counter()
                    interpreter.invoke()
                    samples.append(time.perf_counter() - start)
                times[id(interpreter)] = float(np.median(samples))
            ratios.append(times[id(candidate)] / times[id(self._baseline)])
        return float(np.median(ratios))
