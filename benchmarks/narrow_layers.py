"""What cutting a layer no wider than the channel tile saves on LiteRT: FLOPs, and no time.

XNNPACK computes a convolution's output channels in tiles (16 at a time in
float32 on this CPU at 1 thread, `benchmarks/channel_tiles.py`). A layer no
wider than one tile, such as DenseNet-40's 12-channel growth layers, takes the
same time whatever its width: cutting it from 12 to 1 channel removes
nearly all its FLOPs and none of its time. Plans for LiteRT
(`runtime="litert"`) therefore keep such layers whole; `round_to` alone (no
runtime) leaves them unrounded, as before.

Two tables, LiteRT with XNNPACK, float32, batch 1, each table's files timed
interleaved in one process (`deploy.interleaved_latency`), medians:

- outputs: a 3x3 convolution of a 32x32x148 and of a 16x16x292 input (the
  inputs of DenseNet-40's last growth layer in blocks 1 and 2) to 1 ... 16
  channels, at 1 and 2 threads;
- DenseNet-40 (gammas by the deploy benchmark's rule, not trained) pruned to
  the FLOPs of the paper's plan (ratio 0.4) by a plan for LiteRT as
  `runtime="litert"` makes it now (`matched`), and with the same tiles given
  as `round_to` / `round_inputs_to` without the runtime, which cuts layers
  within one tile (`matched, narrow cut`: what `runtime="litert"` planned
  before this rule). Speed-up against the unpruned model, and its ratio to
  the FLOPs reduction (the issue's aim: at least 0.9).

Usage:

    python benchmarks/narrow_layers.py [--runs 400]

Writes results/narrow_layers.json and narrow_layers.md, and prints the tables. About 3 minutes.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
import deploy  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import kslim  # noqa: E402

NAME = "densenet40"
OUTPUTS = (1, 2, 4, 8, 12, 16)
INPUTS = ((32, 148), (16, 292))  # (side, channels)


def outputs_table(runs, workdir):
    """Median microseconds of a 3x3 convolution to each of `OUTPUTS` channels, per input and thread count."""
    configs = {}
    for side, channels in INPUTS:
        for n in OUTPUTS:
            inp = keras.Input((side, side, channels))
            model = keras.Model(inp, keras.layers.Conv2D(n, 3, padding="same", use_bias=False)(inp))
            path = os.path.join(workdir, f"conv_{side}_{n}.tflite")
            kslim.export(model, path)
            for threads in (1, 2):
                configs[f"{side}x{side}x{channels}|{n}|{threads}"] = (path, threads, True)
    times = deploy.interleaved_latency(configs, runs, block=5)
    return {key: float(np.median(np.concatenate(rounds))) * 1e3 for key, rounds in times.items()}


def densenet_table(runs, workdir):
    model = kslim.models.get(NAME)
    deploy.set_gammas(model, deploy.RATIOS[NAME], seed=0, **deploy.RULES[NAME])
    paper = kslim.plan(model, ratio=deploy.RATIOS[NAME])
    target = paper.flops[1] / paper.flops[0]
    tile, input_tile = kslim.deploy.channel_tile(1), kslim.deploy.channel_tile(1, inputs=True)
    plans = {
        "matched": kslim.plan(model, flops_target=target, runtime="litert"),
        "matched, narrow cut": kslim.plan(model, flops_target=target, selections="sliceable",
                                          round_to=tile, round_inputs_to=input_tile),
    }
    models = {"baseline": model, **{tag: kslim.prune(model, plan=p) for tag, p in plans.items()}}
    record = {"flops_target": target, "tile": tile, "input_tile": input_tile, "variants": {}}
    paths = {}
    for tag, m in models.items():
        paths[tag] = os.path.join(workdir, tag.replace(" ", "_").replace(",", "") + ".tflite")
        report = kslim.export(m, paths[tag])
        narrow = {name: rec["channels"] for name, rec in plans[tag].layers.items()
                  if rec["class"] == "Conv2D" and rec["channels"][1] < rec["channels"][0] <= tile} if tag in plans else {}
        record["variants"][tag] = {"flops": kslim.profile(m).flops, "selections": report.selections,
                                   "flops_added": report.flops_added, "narrow_layers_cut": narrow}
    for threads in (1, 2):
        times = deploy.interleaved_latency({tag: (path, threads, True) for tag, path in paths.items()}, runs, block=5)
        for tag, rounds in times.items():
            v = record["variants"][tag]
            v.setdefault("ms", {})[str(threads)] = float(np.median(np.concatenate(rounds)))
            if tag != "baseline":
                v.setdefault("speedup", {})[str(threads)] = deploy._speedup(times["baseline"], rounds)["speedup"]
    return record


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="timed invokes per file and thread count")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kslim-narrow-") as workdir:
        outputs = outputs_table(args.runs, workdir)
        dense = densenet_table(args.runs, workdir)
    data = {"args": vars(args), "outputs_us": outputs, NAME: dense, "runtime_s": time.perf_counter() - start}
    rows = [["input", "threads"] + [f"{n} out" for n in OUTPUTS]]
    for side, channels in INPUTS:
        for threads in (1, 2):
            key = f"{side}x{side}x{channels}"
            rows.append([key, str(threads)] + [f"{outputs[f'{key}|{n}|{threads}']:.0f} us" for n in OUTPUTS])
    first = deploy._md_table(rows)
    base = dense["variants"]["baseline"]
    rows = [["variant", "FLOPs", "FLOPs red.", "narrow layers cut", "ms 1 thr", "ms 2 thr",
             "speed-up 1 / 2 thr", "speed-up / FLOPs red. 1 / 2 thr"]]
    for tag, v in dense["variants"].items():
        red = base["flops"] / v["flops"]
        cut = ", ".join(f"{name} {a}->{b}" for name, (a, b) in v["narrow_layers_cut"].items()) or "-"
        speed = v.get("speedup")
        rows.append([tag, f"{v['flops'] / 1e6:.0f}M", f"{red:.2f}x", cut, f"{v['ms']['1']:.2f}", f"{v['ms']['2']:.2f}",
                     f"{speed['1']:.2f}x / {speed['2']:.2f}x" if speed else "-",
                     f"{speed['1'] / red:.2f} / {speed['2'] / red:.2f}" if speed else "-"])
    second = deploy._md_table(rows)
    print(first + "\n\n" + second)
    path = _common.write("narrow_layers", data)
    (path.parent / "narrow_layers.md").write_text(
        f"# Narrow layers on LiteRT (`benchmarks/narrow_layers.py`)\n\n"
        f"{_common.measured('narrow_layers', data['runtime_s'])} LiteRT with XNNPACK, "
        f"float32, batch 1, medians of {args.runs} interleaved invokes per file and thread count.\n\n"
        f"A 3x3 convolution to 1 ... 16 output channels:\n\n{first}\n\n"
        f"DenseNet-40 (synthetic gammas, the deploy benchmark's rule) pruned to the paper's FLOPs "
        f"(flops_target={dense['flops_target']:.3f}) by a plan for LiteRT (`matched`: `runtime=\"litert\"`, "
        f"layers no wider than the tile {dense['tile']} kept whole) and by the same plan without that rule "
        f"(`matched, narrow cut`: the tiles given as round_to / round_inputs_to, no runtime):\n\n{second}\n")


if __name__ == "__main__":
    main()
