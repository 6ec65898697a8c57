"""How a pruned model's channel selections should be written to TFLite: measured on LiteRT with XNNPACK.

A `ChannelSelect` (a block reading part of a shared stream) can be written as
a TFLite GATHER, as static slices of its runs of consecutive channels plus
concatenations, or folded into zero weights of the convolution that reads it
(no op at all, but that convolution reads the whole stream again). For the
zoo's pre-activation ResNet-164 and DenseNet-40, pruned at the paper's 40%
with the deploy benchmark's gamma rule (`deploy.py`), this script exports
the pruned model with each `kslim.export(selections=...)` mode and times them
against the unpruned model, interleaved in one process, float32, batch 1, 1
thread. `auto`, the default, slices a selection of at most
`kslim.deploy.lowering.SLICE_RUNS` runs and folds the others.

Usage:

    python benchmarks/selection_lowering.py [--runs 200]

Writes results/selection_lowering.json and prints the table.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import _common  # noqa: E402
import deploy  # noqa: E402
import kslim  # noqa: E402
from kslim.layers.channel_select import ChannelSelect, runs  # noqa: E402

MODELS = ("preresnet164", "densenet40")
MODES = ("gather", "slices", "fold", "auto")


def measure(name, runs_per_model, workdir):
    model = kslim.models.get(name)
    deploy.set_gammas(model, deploy.RATIOS[name], seed=0, **deploy.RULES[name])
    slim = kslim.prune(model, ratio=deploy.RATIOS[name])
    selects = [layer for layer in slim.layers if isinstance(layer, ChannelSelect)]
    run_counts = [len(runs(layer.indices)) for layer in selects]
    paths = {"baseline": os.path.join(workdir, f"{name}-baseline.tflite")}
    kslim.export(model, paths["baseline"])
    row = {"model": name, "selections": len(selects), "runs_mean": float(np.mean(run_counts)),
           "runs_max": int(max(run_counts)), "flops_reduction": kslim.profile(model).flops / kslim.profile(slim).flops,
           "modes": {}}
    for mode in MODES:
        paths[mode] = os.path.join(workdir, f"{name}-{mode}.tflite")
        report = kslim.export(slim, paths[mode], selections=mode)
        row["modes"][mode] = {"lowered": report.selections, "partitions": deploy._partitions(paths[mode]),
                              "ops": len(report.ops)}
    times = deploy.interleaved_latency({k: (p, 1, True) for k, p in paths.items()}, runs_per_model, block=10)
    row["baseline_ms"] = deploy._stats(times["baseline"])
    for mode in MODES:
        s = deploy._speedup(times["baseline"], times[mode])
        row["modes"][mode].update(speedup=s["speedup"], ratio_of_p10=s["ratio_of_p10"],
                                  latency_ms=deploy._stats(times[mode]))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per model file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kslim-lowering-") as workdir:
        for name in MODELS:
            rows.append(measure(name, args.runs, workdir))
    print(f"{'model':14s} {'mode':7s} {'speed-up':>9s} {'p10 ratio':>9s} {'partitions':>10s}  lowered")
    for row in rows:
        print(f"{row['model']} ({row['selections']} selections, {row['runs_mean']:.1f} runs each on average, "
              f"FLOPs reduction {row['flops_reduction']:.2f}x; baseline {row['baseline_ms']['median']:.2f} ms)")
        for mode, m in row["modes"].items():
            print(f"{'':14s} {mode:7s} {m['speedup']:8.2f}x {m['ratio_of_p10']:8.2f}x {m['partitions']!s:>10s}  "
                  f"{m['lowered']}")
    path = _common.write("selection_lowering", {"runs": args.runs, "threads": 1, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
