"""How fast kslim prunes, against Keras rebuilding the same model, and what pruning removes.

Part 1 times `kslim.prune(model, ratio=0.4)` (analysis, plan and rebuild with
the weights copied) against `keras.Model.from_config(model.get_config())` of
the same model (Keras rebuilding it unpruned, new random weights), the two
alternated in one process, for every zoo model and for keras.applications
ResNet50 and DenseNet121 (32x32 inputs, `weights=None`). Scaling factors are
uniform in [0, 1), betas as initialised (0), so no compensation is needed;
the `+beta` rows give every BN a random beta as well, so the constant of the
pruned channels has to be computed and folded (one inference of the model).
The ratio column is the median over rounds of prune / from_config. It runs on
TensorFlow and, in a child process, on JAX (`--backends`).

Part 2 prunes every architecture kslim is tested on (`kslim.testing.archs`
plus the zoo's paper models) with ~35% of their scaling factors set to zero
and prints params and FLOPs before and after.

Results go to benchmarks/results/prune_speed.json and prune_speed.md.

Usage:

    python benchmarks/prune_speed.py [--rounds 5] [--backends tensorflow,jax]
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

ZOO = ("vgg11", "vgg13", "vgg16", "vgg19", "preresnet164", "densenet40", "resnet32",
       "lenet5", "lenet5_caffe", "mlp")
APPLICATIONS = ("ResNet50", "DenseNet121")


def _build(name):
    import keras

    import kslim

    if name in APPLICATIONS:
        model = getattr(keras.applications, name)(weights=None, input_shape=(32, 32, 3), classes=10)
    else:
        model = kslim.models.get(name)
    if not kslim.scaling_factors(model):  # LeNets and the MLP without BN: Yang et al.'s masks
        model = kslim.add_channel_masks(model)
    return model


def _randomise(model, betas, seed=0):
    import numpy as np

    import kslim

    rng = np.random.default_rng(seed)
    for layer, variable in kslim.scaling_factors(model):
        variable.assign(rng.uniform(0.0, 1.0, variable.shape).astype("float32"))
        if betas and getattr(layer, "beta", None) is not None:
            layer.beta.assign(rng.normal(0.0, 0.2, layer.beta.shape).astype("float32"))
    return model


def speed_rows(names, rounds):
    """Rows of part 1 on the current backend."""
    import keras
    import numpy as np

    import kslim

    rows = []
    for name in names:
        for betas in (False, True) if name in ("preresnet164", "densenet40", "ResNet50") else (False,):
            model = _randomise(_build(name), betas)
            kslim.prune(model, ratio=0.4)  # warm-up: first calls trace and cache
            keras.Model.from_config(model.get_config())
            prune_s, keras_s = [], []
            for _ in range(rounds):
                start = time.perf_counter()
                keras.Model.from_config(model.get_config())
                keras_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                kslim.prune(model, ratio=0.4)
                prune_s.append(time.perf_counter() - start)
            ratios = [p / k for p, k in zip(prune_s, keras_s)]
            row = {
                "model": name + (" +beta" if betas else ""),
                "backend": keras.backend.backend(),
                "layers": len(model.layers),
                "prune_s": float(np.median(prune_s)),
                "from_config_s": float(np.median(keras_s)),
                "ratio": float(np.median(ratios)),
                "ratio_range": [float(min(ratios)), float(max(ratios))],
                "rounds": rounds,
            }
            rows.append(row)
            print(f"{row['backend']:10s} {row['model']:20s} {row['layers']:4d} layers  prune "
                  f"{row['prune_s']:6.2f} s  from_config {row['from_config_s']:6.2f} s  "
                  f"ratio {row['ratio']:.2f} [{min(ratios):.2f}, {max(ratios):.2f}]", flush=True)
            keras.backend.clear_session()
    return rows


def sizes():
    import keras

    import kslim
    from kslim.testing import archs
    from kslim.testing.exactness import sparsify

    builders = dict(archs.ALL)
    for name in ("vgg19", "preresnet164", "densenet40", "resnet32"):
        builders[name] = lambda name=name: kslim.models.get(name)
    rows = []
    for name, build in builders.items():
        model = sparsify(build())
        plan = kslim.plan(model, threshold=1e-6)
        slim = kslim.prune(model, plan=plan)
        before, after = kslim.profile(model), kslim.profile(slim)
        rows.append({"model": name, "channels_pruned": plan.factors[1], "channels": plan.factors[0],
                     "params": [before.params, after.params], "flops": [before.flops, after.flops]})
        print(f"{name:18s} channels {plan.factors[1]:5d}/{plan.factors[0]:<5d} "
              f"params {before.params:>10,d} -> {after.params:>10,d} "
              f"({100 * (1 - after.params / before.params):4.1f}% less)  "
              f"FLOPs {before.flops:>13,d} -> {after.flops:>13,d} "
              f"({100 * (1 - after.flops / before.flops):4.1f}% less)", flush=True)
        keras.backend.clear_session()
    return rows


def _child(backend, rounds):
    """Part 1 on another backend, in a fresh process (the backend is fixed at import)."""
    env = dict(os.environ, KERAS_BACKEND=backend)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--rounds", str(rounds)],
        env=env, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    lines = out.strip().splitlines()
    print("\n".join(lines[:-1]), flush=True)
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        rows = speed_rows(ZOO + APPLICATIONS, args.rounds)
        print(json.dumps(rows))
        return
    import _common

    print("== kslim.prune(ratio=0.4) against keras.Model.from_config, alternated ==")
    speed = []
    for backend in args.backends.split(","):
        speed += _child(backend, args.rounds)
    print("\n== params and FLOPs before -> after (~35% of scaling factors zero) ==")
    rows = sizes()
    path = _common.write("prune_speed", {"speed": speed, "sizes": rows})
    (path.parent / "prune_speed.md").write_text(_markdown(speed, rows, _common.machine()))
    print(f"\nwrote {path} and prune_speed.md")


def _markdown(speed, rows, machine):
    pct = lambda a, b: f"{100 * (1 - b / a):.1f}%"  # noqa: E731
    lines = [
        f"Measured with `python benchmarks/prune_speed.py` on {machine['date']}, {machine['platform']}, "
        f"{machine['cpu_count']} CPU cores, TensorFlow {machine['tensorflow']}, Keras {machine['keras']}.",
        "",
        "| backend | model | layers | `kslim.prune` | `Model.from_config` | ratio, median [min, max] |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in speed:
        lo, hi = r["ratio_range"]
        lines.append(
            f"| {r['backend']} | {r['model']} | {r['layers']} | {r['prune_s']:.2f} s | "
            f"{r['from_config_s']:.2f} s | {r['ratio']:.2f} [{lo:.2f}, {hi:.2f}] |"
        )
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
