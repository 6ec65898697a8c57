"""How fast kslim rebuilds a pruned model, and what pruning buys on each architecture.

Part 1 times `kslim.prune` (plan + surgery) on pre-activation ResNets of
growing depth from the zoo (`kslim.models.preresnet(depth)`), with random
scaling factors and ratio 0.4; the aim is a 164-layer ResNet in under 2 s on
2 cores. Part 2 prunes every architecture kslim is tested on (tests/archs.py,
plus the zoo's paper models) with ~35% of their scaling factors set to zero,
and prints params and FLOPs before and after. Results go to
benchmarks/results/prune_speed.json.

Usage:

    python benchmarks/prune_speed.py [--repeats 3]
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402
import archs  # noqa: E402
import kslim  # noqa: E402
from kslim._factors import scaling_factors  # noqa: E402
from test_prune import sparsify  # noqa: E402


def _random_factors(model, seed=0):
    rng = np.random.default_rng(seed)
    for _, variable in scaling_factors(model):
        variable.assign(rng.uniform(0.0, 1.0, variable.shape).astype("float32"))
    return model


def rebuild_times(repeats):
    rows = []
    for depth in (20, 56, 110, 164):
        model = _random_factors(kslim.models.preresnet(depth=depth))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            kslim.prune(model, ratio=0.4)
            times.append(time.perf_counter() - start)
        rows.append({"model": f"preresnet{depth}", "layers": len(model.layers),
                     "median_s": float(np.median(times)), "min_s": float(min(times))})
        print(f"preresnet{depth:<4} {len(model.layers):5d} layers  prune {np.median(times):6.2f} s (median of {repeats})")
    return rows


def sizes():
    builders = dict(archs.ALL)
    for name in ("vgg19", "preresnet164", "densenet40", "resnet32"):
        builders[name] = lambda name=name: kslim.models.get(name)
    rows = []
    for name, build in builders.items():
        model = sparsify(build())
        plan = kslim.plan(model, threshold=1e-6)
        start = time.perf_counter()
        slim = kslim.prune(model, plan=plan)
        seconds = time.perf_counter() - start
        before, after = kslim.profile(model), kslim.profile(slim)
        rows.append({"model": name, "channels_pruned": plan.factors[1], "channels": plan.factors[0],
                     "params": [before.params, after.params], "flops": [before.flops, after.flops],
                     "surgery_s": seconds})
        print(f"{name:18s} channels {plan.factors[1]:5d}/{plan.factors[0]:<5d} "
              f"params {before.params:>10,d} -> {after.params:>10,d} ({100 * (1 - after.params / before.params):4.1f}% less)  "
              f"FLOPs {before.flops:>13,d} -> {after.flops:>13,d} ({100 * (1 - after.flops / before.flops):4.1f}% less)")
        keras.backend.clear_session()
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("== rebuild time (plan + surgery), ratio 0.4 ==")
    times = rebuild_times(args.repeats)
    print("\n== params and FLOPs before -> after (~35% of scaling factors zero) ==")
    rows = sizes()
    path = _common.write("prune_speed", {"rebuild": times, "sizes": rows})
    md = _markdown(times, rows, _common.machine())
    (path.parent / "prune_speed.md").write_text(md)
    print(f"\nwrote {path} and prune_speed.md")


def _markdown(times, rows, machine):
    pct = lambda a, b: f"{100 * (1 - b / a):.1f}%"  # noqa: E731
    lines = [
        f"Measured with `python benchmarks/prune_speed.py` on {machine['date']}, {machine['platform']}, "
        f"{machine['cpu_count']} CPU cores, TensorFlow {machine['tensorflow']}, Keras {machine['keras']}.",
        "",
        "| model | layers | `kslim.prune` (plan + rebuild), median |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {r['model']} | {r['layers']} | {r['median_s']:.2f} s |" for r in times]
    lines += [
        "",
        "With ~35% of scaling factors set to zero (`threshold=1e-6`; tied channels go only when all their "
        "factors are zero):",
        "",
        "| model | channels pruned | params before -> after | FLOPs before -> after |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        (p0, p1), (f0, f1) = r["params"], r["flops"]
        lines.append(
            f"| {r['model']} | {r['channels_pruned']}/{r['channels']} | {p0:,} -> {p1:,} ({pct(p0, p1)} less) "
            f"| {f0:,} -> {f1:,} ({pct(f0, f1)} less) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
