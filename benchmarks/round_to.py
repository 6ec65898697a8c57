"""Does rounding pruned widths to a multiple of 4 or 8 (`round_to`) make LiteRT's XNNPACK faster on this CPU?

XNNPACK packs channels in groups (of 8 or 16 floats for AVX2/AVX-512), so
widths that are not multiples may waste part of each group. For the zoo's
VGG-19 and pre-activation ResNet-164, with the deploy benchmark's gamma rule
(`deploy.py`) and pruned at the paper's ratio, this script prunes with
`round_to` 1, 4, 8 and 16, exports float32 TFLite (`kslim.export`, default
lowering) and times each file against the unpruned model, interleaved in one
process, batch 1, 1 thread. Rounding keeps a few more channels, so FLOPs rise
a little; the question is whether time falls anyway.

Usage:

    python benchmarks/round_to.py [--runs 200]

Writes results/round_to.json and prints the table.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
import deploy  # noqa: E402
import kslim  # noqa: E402

MODELS = ("vgg19", "preresnet164")
ROUND_TO = (1, 4, 8, 16)


def measure(name, runs, workdir):
    model = kslim.models.get(name)
    deploy.set_gammas(model, deploy.RATIOS[name], seed=0, **deploy.RULES[name])
    paths = {"baseline": os.path.join(workdir, f"{name}-baseline.tflite")}
    kslim.export(model, paths["baseline"])
    base_flops = kslim.profile(model).flops
    rows = {}
    for k in ROUND_TO:
        slim = kslim.prune(model, ratio=deploy.RATIOS[name], round_to=k)
        paths[k] = os.path.join(workdir, f"{name}-round{k}.tflite")
        kslim.export(slim, paths[k])
        rows[k] = {"round_to": k, "flops_reduction": base_flops / kslim.profile(slim).flops,
                   "params": int(kslim.profile(slim).trainable_params)}
    times = deploy.interleaved_latency({key: (p, 1, True) for key, p in paths.items()}, runs, block=10)
    for k in ROUND_TO:
        s = deploy._speedup(times["baseline"], times[k])
        rows[k].update(speedup=s["speedup"], ratio_of_p10=s["ratio_of_p10"],
                       speedup_over_flops_reduction=s["speedup"] / rows[k]["flops_reduction"],
                       latency_ms=deploy._stats(times[k]))
    return {"model": name, "ratio": deploy.RATIOS[name], "baseline_ms": deploy._stats(times["baseline"]),
            "rows": list(rows.values())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per model file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kslim-round-") as workdir:
        results = [measure(name, args.runs, workdir) for name in MODELS]
    print(f"{'model':13s} {'round_to':>8s} {'FLOPs red.':>10s} {'speed-up':>9s} {'ratio':>6s} {'ms':>6s}")
    for result in results:
        for row in result["rows"]:
            print(f"{result['model']:13s} {row['round_to']:8d} {row['flops_reduction']:9.2f}x "
                  f"{row['speedup']:8.2f}x {row['speedup_over_flops_reduction']:6.2f} "
                  f"{row['latency_ms']['median']:6.2f}")
    path = _common.write("round_to", {"runs": args.runs, "threads": 1, "results": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
