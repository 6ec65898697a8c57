"""Does `kslim.plan(model, latency_target=t)` land on its target? How long does planning take, cached and not?

For each model (the deploy benchmark's gamma rule, `deploy.py`) and target,
this script plans with `latency_target` (measured LiteRT latency, XNNPACK,
float32, batch 1, 1 thread; bisection over the pruning ratio), records the
planning time with an empty cache and again with the cache it filled, prunes
with the plan, and measures the pruned model's latency fraction once more from
scratch (a new meter, an empty cache). It also reports the FLOPs the plan
keeps, to show how far latency and FLOPs part.

Models: a narrow VGG-11 at 32x32 (the test's), the zoo's VGG-19 and
DenseNet-40. The cache lives in a temporary folder, so the user's is not
touched.

Usage:

    python benchmarks/latency_budget.py [--models vgg11_narrow,vgg19,densenet40] [--targets 0.5,0.7,0.9]

Writes results/latency_budget.json and latency_budget.md.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
import deploy  # noqa: E402
import kslim  # noqa: E402
from kslim.deploy import latency  # noqa: E402
from kslim.models.vgg_models import vgg  # noqa: E402

MODELS = ("vgg11_narrow", "vgg19", "densenet40")


def build(name):
    if name == "vgg11_narrow":
        model = vgg(11, widths=[16, 32, 64, 64, 128, 128, 128, 128])
        deploy.set_gammas(model, 0.5, seed=0, kappa=2.0, internal=1.0)
        return model
    model = kslim.models.get(name)
    deploy.set_gammas(model, deploy.RATIOS[name], seed=0, **deploy.RULES[name])
    return model


def run(name, target, workdir):
    model = build(name)
    os.environ["KSLIM_CACHE_DIR"] = os.path.join(workdir, f"{name}-{target}")
    latency._MEMORY_CACHE.clear()
    start = time.perf_counter()
    plan = kslim.plan(model, latency_target=target)
    first = time.perf_counter() - start
    latency._MEMORY_CACHE.clear()  # the second plan reads the JSON cache the first one wrote
    start = time.perf_counter()
    again = kslim.plan(model, latency_target=target)
    second = time.perf_counter() - start
    slim = kslim.prune(model, plan=plan)
    os.environ["KSLIM_CACHE_DIR"] = os.path.join(workdir, f"{name}-{target}-check")
    latency._MEMORY_CACHE.clear()
    measured = [latency.LatencyMeter(model).fraction(plan, lambda: slim)]
    latency._MEMORY_CACHE.clear()
    measured.append(latency.LatencyMeter(model)._time(slim))
    row = {
        "model": name, "target": target, "measured": measured, "same_plan_again": again.layers == plan.layers,
        "plan_s_empty_cache": first, "plan_s_cached": second,
        "flops_kept": plan.flops[1] / plan.flops[0], "params_kept": plan.params[1] / plan.params[0],
        "channels_pruned": plan.factors[1], "channels": plan.factors[0],
    }
    print(f"{name:13s} target {target:.2f}  measured {measured[0]:.3f} / {measured[1]:.3f}  "
          f"FLOPs kept {row['flops_kept']:.3f}  plan {first:5.1f} s, cached {second:4.2f} s", flush=True)
    return row


def markdown(rows, machine):
    lines = [
        f"Measured with `python benchmarks/latency_budget.py` on {machine['date']}, {machine['platform']}, "
        f"{machine['cpu_count']} CPU cores, TensorFlow {machine['tensorflow']}, Keras {machine['keras']}. "
        "LiteRT XNNPACK, float32, batch 1, 1 thread; latency as a fraction of the unpruned model's, "
        "paired medians of interleaved rounds; gammas by the deploy benchmark's rule.",
        "",
        "| model | target | measured after planning (two fresh meters) | FLOPs kept | params kept | plan, empty cache | plan, cached |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['target']:.2f} | {r['measured'][0]:.3f} / {r['measured'][1]:.3f} | "
            f"{r['flops_kept']:.3f} | {r['params_kept']:.3f} | {r['plan_s_empty_cache']:.1f} s | "
            f"{r['plan_s_cached']:.2f} s |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--targets", default="0.5,0.7,0.9")
    args = parser.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kslim-latency-") as workdir:
        for name in args.models.split(","):
            for target in targets:
                try:
                    rows.append(run(name, target, workdir))
                except ValueError as error:  # an unreachable target is a result too
                    print(f"{name} target {target}: {error}", flush=True)
                    rows.append({"model": name, "target": target, "error": str(error)})
    path = _common.write("latency_budget", {"rows": rows})
    ok = [r for r in rows if "error" not in r]
    (path.parent / "latency_budget.md").write_text(markdown(ok, _common.machine()))
    print(f"wrote {path} and latency_budget.md")


if __name__ == "__main__":
    main()
