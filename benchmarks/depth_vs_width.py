"""Fewer channels or fewer dense layers: which one LiteRT's time follows on a DenseNet.

Before d558d7f the deploy benchmark's `matched int8` rows (`kslim.prune(model,
flops_target=f, runtime="litert", quantize="int8")`, f the FLOPs fraction the
paper's plan keeps) fell short of "speed-up >= 0.9x the FLOPs reduction" on
DenseNet121 and DenseNet-40. Sampling XNNPACK's kernels showed why: their
convolutions fell as their multiply-accumulates did, but the BN passes over
the dense stream and the copies that build it stayed, since a plan that cut
channels left every dense layer reading a stream about as wide as before.

This script times the other way to remove the same FLOPs: whole dense layers
(each one's BN passes, convolutions and its part of the stream, for every
later layer of its block). It builds the same architecture with fewer layers
per block (the last ones of each block gone; untrained) and times it against
the baseline next to kslim's own plans of the deploy benchmark (`matched`,
`matched int8`: the same models, gammas and plans; channel plans before
d558d7f, since which a plan for LiteRT removes a growth layer narrower than
the channel tile whole, chosen by its readers' factors), float32 and int8, LiteRT with XNNPACK, 1 thread, batch 1, all files
of a model and precision interleaved in one process (paired speed-ups as in
`deploy.py`). The fewer-layer networks are untrained (their time does not
depend on their weights), so this measures time only; which layers a trained
network can spare is `benchmarks/litert_finetune.py`'s question.

DenseNet121 is keras.applications' (weights=None, 96x96 input, 10 classes;
the fewer-layer ones from keras' own `DenseNet(blocks)` builder);
DenseNet-40 is the zoo's (`kslim.models.densenet(depth=...)`, the same
number of layers in each block).

Usage:

    python benchmarks/depth_vs_width.py [--models densenet40,densenet121] [--runs 400]
    python benchmarks/depth_vs_width.py --rewrite   # the markdown again from the recorded JSON

Writes results/depth_vs_width.json and depth_vs_width.md, and prints the table. About 10 minutes.
"""

import argparse
import json
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
import deploy  # noqa: E402

import kslim  # noqa: E402

# Fewer layers per dense block: DenseNet121 has blocks (6, 12, 24, 16), DenseNet-40 12 layers in each of 3.
FEWER = {
    "densenet121": [(5, 9, 14, 9), (4, 8, 16, 10), (4, 8, 14, 8)],
    "densenet40": [(11,) * 3, (10,) * 3, (9,) * 3],
}


def fewer_layers(name, blocks):
    """`name`'s architecture with `blocks` dense layers per block (untrained)."""
    if name == "densenet121":
        from keras.src.applications.densenet import DenseNet  # the builder behind keras.applications.DenseNet121

        return DenseNet(list(blocks), weights=None, input_shape=deploy.APPLICATION_INPUT, classes=10,
                        name=f"densenet_{'_'.join(map(str, blocks))}")
    return kslim.models.densenet(depth=3 * blocks[0] + 4)


def run_model(name, runs, workdir):
    model, target = deploy.synthetic(name)
    both = ("float32", "int8")

    removed = {}  # quantize -> how many growth layers the plan removes

    def matched(quantize):  # kslim's plan, timed in the precision it was planned for, as in deploy.py
        plan = kslim.plan(model, flops_target=target, runtime="litert", quantize=quantize)
        removed[quantize] = sum(rec["why"].startswith("removed: every reader") for rec in plan.layers.values())
        return kslim.prune(model, plan=plan), "plan", (quantize or "float32",)

    # tag: (model, what it removes, the precisions it is timed in); rows in this order
    models = {"baseline": (model, "-", both), "matched": matched(None)}
    for blocks in FEWER[name]:
        fewer = fewer_layers(name, blocks)
        deploy.set_gammas(fewer, deploy.RATIOS[name], seed=0, **deploy.RULES[name])  # weights like the baseline's
        models["layers " + "-".join(map(str, blocks))] = (fewer, "depth", both)
    models["matched int8"] = matched("int8")
    calibration = deploy.calibration(model)
    flops = {tag: kslim.profile(m).flops for tag, (m, _, _) in models.items()}
    record = {"flops_target": target, "variants": {
        tag: {"kind": how, "flops": int(flops[tag]), "flops_reduction": flops["baseline"] / flops[tag]}
        for tag, (_, how, _) in models.items()}}
    for tag, quantize in (("matched", None), ("matched int8", "int8")):
        record["variants"][tag]["layers_removed"] = removed[quantize]
    for quantize in both:
        paths = {}
        for tag, (m, how, precisions) in models.items():
            if quantize not in precisions:
                continue
            paths[tag] = os.path.join(workdir, f"{name}_{tag.replace(' ', '_')}_{quantize}.tflite")
            kslim.export(m, paths[tag], quantize=None if quantize == "float32" else quantize,
                         representative_data=calibration,  # the fewer-layer nets are timed only: any int8 parity
                         atol=float("inf") if how == "depth" else None)
        times = deploy.interleaved_latency({t: (p, 1, True) for t, p in paths.items()}, runs=runs, block=10)
        for tag in paths:
            v = record["variants"][tag]
            v[quantize] = {"latency_ms": deploy._stats(times[tag])}
            if tag != "baseline":
                v[quantize].update(deploy._speedup(times["baseline"], times[tag]))
                print(f"  {name} {tag} {quantize}: {v['flops_reduction']:.2f}x fewer FLOPs, "
                      f"{v[quantize]['speedup']:.2f}x faster", flush=True)
    return record


def table(results):
    rows = [["model", "variant", "removes", "FLOPs", "FLOPs red.", "float32 speed-up [p10, p90]",
             "speed-up / FLOPs red.", "int8 speed-up [p10, p90]", "speed-up / FLOPs red."]]
    what = {"-": "-", "width": "channels (a plan for LiteRT)", "depth": "whole dense layers",
            "plan": "kslim's plan for LiteRT ({} growth layers removed whole)"}
    for name, record in results.items():
        for tag, v in record["variants"].items():
            removes = what[v["kind"]].format(v.get("layers_removed"))
            cells = []
            for quantize in ("float32", "int8"):
                s = v.get(quantize)
                if s is None or tag == "baseline":
                    cells += [f"{s['latency_ms']['median']:.2f} ms" if s else "-", "-"]
                    continue
                cells += [f"{s['speedup']:.2f}x [{s['paired_p10']:.2f}, {s['paired_p90']:.2f}]",
                          f"{s['speedup'] / v['flops_reduction']:.2f}"]
            rows.append([name, tag, removes, f"{v['flops'] / 1e6:.0f}M", f"{v['flops_reduction']:.2f}x",
                         *cells])
    return deploy._md_table(rows)


def write_markdown(data):
    args = data["args"]
    (_common.RESULTS / "depth_vs_width.md").write_text(
        "# Fewer channels or fewer dense layers: LiteRT time against FLOPs (`benchmarks/depth_vs_width.py`)\n\n"
        f"{_common.measured('depth_vs_width', data['runtime_s'])} LiteRT with XNNPACK, 1 thread, batch 1; "
        f"{args['runs']} invokes per file, the files of a model and precision interleaved; speed-up: median over "
        "rounds of median(baseline) / median(variant), [p10, p90] of those ratios. `matched` / `matched int8`: "
        "the deploy benchmark's plans (`flops_target` = the paper's plan's FLOPs, `runtime=\"litert\"`, "
        "int8's with `quantize=\"int8\"`; synthetic gammas), each timed in the precision it was planned for. "
        "`layers a-b-c`: the same architecture with that many dense layers per block (the last ones of each "
        "block removed; untrained, time only). The baseline's cells give its median latency. The issue's aim: a "
        f"speed-up at least 0.9x the FLOPs reduction.\n\n{table(data['results'])}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="densenet40,densenet121")
    parser.add_argument("--runs", type=int, default=400, help="invokes per file and precision")
    parser.add_argument("--rewrite", action="store_true",
                        help="rewrite depth_vs_width.md from the recorded depth_vs_width.json; measure nothing")
    args = parser.parse_args()
    if args.rewrite:
        write_markdown(json.loads((_common.RESULTS / "depth_vs_width.json").read_text()))
        return
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="kslim-depth-") as workdir:
        for name in args.models.split(","):
            print(f"== {name}", flush=True)
            results[name] = run_model(name, args.runs, workdir)
    data = {"args": vars(args), "results": results, "runtime_s": time.perf_counter() - start}
    print(table(results))
    _common.write("depth_vs_width", data)
    write_markdown(data)


if __name__ == "__main__":
    main()
