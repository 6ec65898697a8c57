"""`compare`: baseline and pruned model side by side — params, FLOPs, size, latency, memory."""

import dataclasses

from kslim.deploy.measurement import measure


def compare(baseline, pruned, threads=(1, 2), runs=100, warmup=10, memory=True):
    """Measures two models with `kslim.measure` and tabulates them side by side.

    Use it after `kslim.prune` to see what slimming bought on this CPU. Both
    models are measured in the same process, one after the other, so the
    numbers are comparable. Keras models are converted to float32 TFLite in a
    temporary directory and also get parameter and FLOP counts from
    `kslim.profile` (2 x MACs, as in the paper); for `.tflite` paths those
    rows are left empty.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017 (Tables 1-2 report the same columns).

    Args:
        baseline: a `keras.Model` or a `.tflite` path, the unpruned model.
        pruned: a `keras.Model` or a `.tflite` path, the slimmed model.
        threads: tuple of int, the interpreter thread counts to time.
        runs: int, timed runs per thread count.
        warmup: int, untimed runs before them.
        memory: bool, also measure run-time memory.

    Returns:
        A `Comparison`: `baseline` and `pruned` `Measurement`s, `params` and
        `flops` (pairs, None where unknown); `print` it for the table.

    Raises:
        FileNotFoundError, ValueError, TypeError: as `kslim.measure`.

    Example:

    >>> print(kslim.deploy.compare(model, slim, runs=50))
    """
    measurements = [measure(m, threads, runs, warmup, memory) for m in (baseline, pruned)]
    profiles = [_profile(m) for m in (baseline, pruned)]
    return Comparison(
        baseline=measurements[0],
        pruned=measurements[1],
        params=tuple(None if p is None else p.params for p in profiles),
        flops=tuple(None if p is None else p.flops for p in profiles),
    )


@dataclasses.dataclass
class Comparison:
    """Two `Measurement`s and their parameter and FLOP counts, printable as a table.

    Attributes:
        baseline: `Measurement` of the unpruned model.
        pruned: `Measurement` of the slimmed model.
        params: pair of int or None, parameters of (baseline, pruned).
        flops: pair of int or None, FLOPs (2 x MACs, batch 1) of (baseline, pruned).
    """

    baseline: object
    pruned: object
    params: tuple = (None, None)
    flops: tuple = (None, None)

    def __post_init__(self):
        self.params, self.flops = tuple(self.params), tuple(self.flops)

    def to_dict(self):
        """Returns plain Python data: both measurements, params and FLOPs."""
        return {
            "baseline": self.baseline.to_dict(),
            "pruned": self.pruned.to_dict(),
            "params": list(self.params),
            "flops": list(self.flops),
        }

    def __str__(self):
        rows = [("", "baseline", "pruned")]
        rows.append(("model", self.baseline.name, self.pruned.name))
        for label, pair in (("params", self.params), ("FLOPs", self.flops)):
            if any(v is not None for v in pair):
                rows.append((label,) + tuple("-" if v is None else f"{v:,}" for v in pair))
        for (label, base), (_, slim) in zip(self.baseline.rows(), self.pruned.rows()):
            rows.append((label, base, slim))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
        )


def _profile(model):
    import keras

    if not isinstance(model, keras.Model):
        return None
    try:
        from kslim.profiling import profile
    except ImportError:
        return None
    return profile(model)
