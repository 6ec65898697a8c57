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
architecture, the pruned widths and selections, the thread count and the
LiteRT version, not the weight values) in memory and in a JSON file under
`$KSLIM_CACHE_DIR` (default `~/.cache/kslim`), so a second plan of the same
model, or `kslim.prune` after `kslim.plan`, measures nothing again.
"""

import hashlib
import importlib.metadata
import json
import os
import time

import numpy as np

from kslim._internal import files as _files

_MEMORY_CACHE = {}


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
        try:
            self._runtime = importlib.metadata.version("ai-edge-litert")
        except importlib.metadata.PackageNotFoundError:
            self._runtime = "?"

    def key(self, plan):
        """What decides a candidate's latency: architecture, pruned widths and selections, threads, runtime."""
        layers = {name: [rec["channels"], rec["in"] is not None and [len(a) if a else None for a in rec["in"]],
                         rec["select"]] for name, rec in sorted(plan.layers.items())}
        text = json.dumps([self._architecture, layers, self.threads, self._runtime], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def fraction(self, plan, build):
        """Measured latency of `build()` (the model pruned by `plan`) over the unpruned model's.

        `build` is only called when the plan's latency is not cached.
        """
        key = self.key(plan)
        if key in _MEMORY_CACHE:
            return _MEMORY_CACHE[key]
        stored = _read_cache()
        if key in stored:
            _MEMORY_CACHE[key] = stored[key]
            return stored[key]
        value = self._time(build())
        _MEMORY_CACHE[key] = value
        stored = _read_cache()
        stored[key] = value
        _write_cache(stored)
        return value

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
