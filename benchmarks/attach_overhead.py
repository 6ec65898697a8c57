"""Measures the training-step overhead of `kslim.attach` (the L1 penalty on every BN gamma).

Two copies of one narrow VGG-style network (same weights) are trained with
`train_on_batch` on the same random CIFAR-shaped batch, one with
`kslim.attach(model, lam)` and one without. After a warm-up (tracing), the two
are timed in alternating blocks of `--steps` steps, the order swapped every
round, so that load on a shared machine affects both alike. Reported: the
median step time of each, the median of the per-round ratios (paired), and the
overhead in percent. Results go to benchmarks/results/attach_overhead.json
with the machine and date.

Usage:

    python benchmarks/attach_overhead.py --steps 10 --rounds 40 --batch 64
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kslim  # noqa: E402
from kslim.sparsity.factors import scaling_factors  # noqa: E402

_RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "attach_overhead.json"


def _vgg(widths, num_classes=10):
    """A narrow VGG: 3x3 conv-BN-ReLU stacks, "M" = 2x2 max pooling."""
    layers = [keras.Input((32, 32, 3))]
    for i, width in enumerate(widths):
        if width == "M":
            layers.append(keras.layers.MaxPooling2D(name=f"pool{i}"))
            continue
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i}"),
            keras.layers.BatchNormalization(name=f"bn{i}"),
            keras.layers.ReLU(name=f"relu{i}"),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes)]
    return keras.Sequential(layers, name="vgg_narrow")


def _compiled(widths, lam, weights):
    model = _vgg(widths)
    model.set_weights(weights)
    if lam is not None:
        kslim.attach(model, lam=lam)
    model.compile(
        keras.optimizers.SGD(0.01, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def _time_block(model, x, y, steps):
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)  # returns numpy logs, so every step is synchronised
    return (time.perf_counter() - start) / steps


def _machine():
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "numpy": np.__version__,
        "kslim": kslim.__version__,
    }
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["devices"] = [d.name for d in tf.config.list_logical_devices()]
    except ImportError:
        info["tensorflow"] = None
    if hasattr(os, "getloadavg"):
        info["loadavg_at_start"] = list(os.getloadavg())
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="train steps per timed block")
    parser.add_argument("--rounds", type=int, default=40, help="timed blocks per model")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps per model first")
    parser.add_argument("--batch", type=int, default=64, help="batch size")
    parser.add_argument("--lam", type=float, default=1e-4, help="L1 weight of the attached model")
    parser.add_argument(
        "--widths", default="16,16,M,32,32,M,64,64,M,128", help="conv widths, M = max pooling"
    )
    parser.add_argument("--output", default=str(_RESULTS), help="JSON file to write")
    args = parser.parse_args()
    widths = [w if w == "M" else int(w) for w in args.widths.split(",")]

    machine = _machine()
    keras.utils.set_random_seed(0)
    weights = _vgg(widths).get_weights()
    models = {
        "plain": _compiled(widths, None, weights),
        "attach": _compiled(widths, args.lam, weights),
    }
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=args.batch)
    for model in models.values():
        for _ in range(args.warmup):
            model.train_on_batch(x, y)

    times = {name: [] for name in models}
    order = list(models)
    for _ in range(args.rounds):
        for name in order:
            times[name].append(_time_block(models[name], x, y, args.steps))
        order.reverse()

    plain, attached = np.array(times["plain"]), np.array(times["attach"])
    ratios = attached / plain
    summary = {
        "plain_ms_median": 1e3 * float(np.median(plain)),
        "attach_ms_median": 1e3 * float(np.median(attached)),
        "plain_ms_min": 1e3 * float(np.min(plain)),
        "attach_ms_min": 1e3 * float(np.min(attached)),
        "overhead_pct_of_medians": 100.0 * float(np.median(attached) / np.median(plain) - 1.0),
        "overhead_pct_paired_median": 100.0 * float(np.median(ratios) - 1.0),
        "overhead_pct_paired_iqr": [
            100.0 * float(q - 1.0) for q in np.percentile(ratios, [25, 75])
        ],
        # The fastest block is the one least disturbed by other processes.
        "overhead_pct_of_minima": 100.0 * float(np.min(attached) / np.min(plain) - 1.0),
    }
    if hasattr(os, "getloadavg"):
        machine["loadavg_at_end"] = list(os.getloadavg())
    num_factors = sum(int(np.prod(v.shape)) for _, v in scaling_factors(models["attach"]))

    print(f"{'model':<8} {'median ms/step':>15} {'p25':>8} {'p75':>8} {'min':>8}")
    for name, values in (("plain", plain), ("attach", attached)):
        p25, p75 = 1e3 * np.percentile(values, [25, 75])
        print(
            f"{name:<8} {1e3 * np.median(values):>15.2f} {p25:>8.2f} {p75:>8.2f} "
            f"{1e3 * np.min(values):>8.2f}"
        )
    print(
        f"overhead: {summary['overhead_pct_paired_median']:+.2f}% (median of {args.rounds} paired "
        f"rounds, IQR {summary['overhead_pct_paired_iqr'][0]:+.2f}% .. "
        f"{summary['overhead_pct_paired_iqr'][1]:+.2f}%); ratio of medians "
        f"{summary['overhead_pct_of_medians']:+.2f}%, "
        f"of minima {summary['overhead_pct_of_minima']:+.2f}%"
    )

    result = {
        "benchmark": "attach_overhead",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "config": {
            "steps": args.steps,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "batch": args.batch,
            "lam": args.lam,
            "widths": args.widths,
            "params": models["plain"].count_params(),
            "scaling_factors": num_factors,
        },
        "summary": summary,
        "ms_per_step": {name: [1e3 * t for t in values] for name, values in times.items()},
    }
    output = pathlib.Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
