"""Which channel multiple (`round_to`) should latency-budgeted plans use on this CPU?

XNNPACK computes a convolution's output channels in tiles of vector width, so
a pruned width inside a tile may save nothing. Three measurements, LiteRT
with XNNPACK, batch 1, 1 thread, all files of a table timed interleaved in
one process:

1. **Staircase.** A 3x3 convolution of a 16x16x64 input to 8, 12, ..., 64
   output channels (`kslim.deploy.latency.probe_times`), float32 and int8, and
   the multiple `kslim.deploy.channel_tile` picks from the float32 times (see
   `kslim.deploy.latency.choose_tile`; `benchmarks/channel_tiles.py` gives the
   input-channel tiles too).
2. **Fixed ratio.** The zoo's VGG-19 and pre-act ResNet-164 (the deploy
   benchmark's gamma rule, `deploy.py`) and, where this machine has them, the
   CIFAR-10 reproduction's sparsity-trained ResNet-20 and DenseNet-16, pruned
   at the deploy benchmark's ratio with `selections="sliceable"` and
   `round_to` 1, 8, 16 and 32: FLOPs reduction and speed-up over the unpruned
   model.
3. **Latency budget.** `kslim.plan(model, latency_target=t)` with
   `round_to=1` and with the measured multiple: the latency
   each plan's model measures afterwards (a fresh meter, twice) and the FLOPs
   and parameters it keeps. At the same latency, more kept is better.

Usage:

    python benchmarks/round_to.py [--runs 300] [--models vgg19,preresnet164,...] [--skip-budget]

Writes results/round_to.json and round_to.md, and prints the tables. About 25 minutes.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import _common  # noqa: E402
import deploy  # noqa: E402
import kslim  # noqa: E402
from kslim.deploy import latency  # noqa: E402

MODELS = ("vgg19", "preresnet164", "preresnet20_trained", "densenet16_trained")
ROUND_TO = (1, 8, 16, 32)
TARGETS = {"vgg19": 0.5, "preresnet164": 0.9, "preresnet20_trained": 0.9, "densenet16_trained": 0.9}
WIDTHS = tuple(range(8, 65, 4))


def load(name):
    if name in deploy.TRAINED:
        path = deploy.CIFAR_CACHE / deploy.TRAINED[name] / "pass1" / "sparse.keras"
        if not path.exists():
            return None
        model = keras.saving.load_model(str(path), compile=False)
        kslim.detach(model)
        return model
    model = kslim.models.get(name)
    deploy.set_gammas(model, deploy.RATIOS[name], seed=0, **deploy.RULES[name])
    return model


def staircase(runs):
    rows = {}
    for quantize in (None, "int8"):
        times = latency.probe_times(1, rounds=runs // 5, block=5, widths=WIDTHS, quantize=quantize)
        rows[quantize or "float32"] = {str(w): t for w, t in times.items()}
    fp32 = {int(w): t for w, t in rows["float32"].items()}
    return {"input": list(latency._PROBE_INPUT), "kernel": 3, "ms": rows,
            "tile": latency.choose_tile(fp32), "tile_from_probe_widths": latency.choose_tile(
                {w: t for w, t in fp32.items() if w in latency._PROBE_WIDTHS})}


def fixed_ratio(name, model, runs, workdir):
    paths = {"baseline": os.path.join(workdir, f"{name}-baseline.tflite")}
    kslim.export(model, paths["baseline"], atol=float("inf"))
    base_flops = kslim.profile(model).flops
    rows = {}
    for k in ROUND_TO:
        slim = kslim.prune(model, ratio=deploy.RATIOS[name], round_to=k, selections="sliceable")
        paths[k] = os.path.join(workdir, f"{name}-round{k}.tflite")
        kslim.export(slim, paths[k], atol=float("inf"))
        profile = kslim.profile(slim)
        rows[k] = {"round_to": k, "flops_reduction": base_flops / profile.flops,
                   "params": int(profile.trainable_params)}
    times = deploy.interleaved_latency({key: (p, 1, True) for key, p in paths.items()}, runs, block=15)
    for k in ROUND_TO:
        s = deploy._speedup(times["baseline"], times[k])
        rows[k].update(speedup=s["speedup"], paired_p10=s["paired_p10"], paired_p90=s["paired_p90"],
                       speedup_over_flops_reduction=s["speedup"] / rows[k]["flops_reduction"],
                       latency_ms=deploy._stats(times[k]))
    return {"model": name, "ratio": deploy.RATIOS[name], "baseline_ms": deploy._stats(times["baseline"]),
            "rows": list(rows.values())}


def budgeted(name, model, workdir):
    target, rows = TARGETS[name], []
    for round_to in (1, latency.channel_tile()):
        os.environ["KSLIM_CACHE_DIR"] = os.path.join(workdir, f"{name}-{round_to}")
        latency._MEMORY_CACHE.clear()
        plan = kslim.plan(model, latency_target=target, round_to=round_to)
        slim = kslim.prune(model, plan=plan)
        latency._MEMORY_CACHE.clear()
        measured = [latency.LatencyMeter(model)._time(slim) for _ in range(2)]
        rows.append({"model": name, "target": target,
                     "round_to": round_to if round_to == 1 else f"{round_to} (the tile)",
                     "measured": measured, "flops_kept": plan.flops[1] / plan.flops[0],
                     "params_kept": plan.params[1] / plan.params[0], "channels_pruned": plan.factors[1]})
        print(f"  {name} target {target} round_to {rows[-1]['round_to']}: measured "
              f"{measured[0]:.3f} / {measured[1]:.3f}, FLOPs kept {rows[-1]['flops_kept']:.3f}", flush=True)
    return rows


def markdown(data):
    m, st = data["machine"], data["staircase"]
    lines = [f"Measured with `python benchmarks/round_to.py` on {m['date']}, {m['platform']}, "
             f"{m['cpu_model']} ({', '.join(m['simd'])}), {m['cpu_count']} CPU cores, TensorFlow "
             f"{m['tensorflow']}, Keras {m['keras']}. LiteRT XNNPACK, batch 1, 1 thread, interleaved.", "",
             f"Staircase: 3x3 convolution of a {'x'.join(map(str, st['input']))} input, median ms by output "
             f"channels; `kslim.deploy.channel_tile` picks **{st['tile']}** here.", "",
             "| output channels | " + " | ".join(st["ms"]["float32"]) + " |",
             "|---|" + "---:|" * len(st["ms"]["float32"])]
    for kind, times in st["ms"].items():
        lines.append(f"| {kind} ms | " + " | ".join(f"{t:.3f}" for t in times.values()) + " |")
    lines += ["", "Fixed ratio (`selections=\"sliceable\"`), speed-up over the unpruned model [paired p10, p90]:", "",
              "| model | round_to | FLOPs red. | speed-up | speed-up / FLOPs red. | params |",
              "|---|---:|---:|---:|---:|---:|"]
    for result in data["fixed_ratio"]:
        for r in result["rows"]:
            lines.append(f"| {result['model']} | {r['round_to']} | {r['flops_reduction']:.2f}x | "
                         f"{r['speedup']:.2f}x [{r['paired_p10']:.2f}, {r['paired_p90']:.2f}] | "
                         f"{r['speedup_over_flops_reduction']:.2f} | {r['params'] / 1e6:.3f}M |")
    if data["budget"]:
        lines += ["", "Latency budget: `kslim.plan(model, latency_target=t, round_to=...)`, the pruned model "
                  "measured again by two fresh meters:", "",
                  "| model | target | round_to | measured | FLOPs kept | params kept |", "|---|---:|---|---:|---:|---:|"]
        for r in data["budget"]:
            lines.append(f"| {r['model']} | {r['target']:.2f} | {r['round_to']} | {r['measured'][0]:.3f} / "
                         f"{r['measured'][1]:.3f} | {r['flops_kept']:.3f} | {r['params_kept']:.3f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300, help="timed invokes per model file")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--skip-budget", action="store_true", help="no latency-budgeted plans")
    args = parser.parse_args()
    data = {"runs": args.runs, "threads": 1, "staircase": staircase(args.runs)}
    print(f"staircase (tile {data['staircase']['tile']}):", flush=True)
    for kind, times in data["staircase"]["ms"].items():
        print(f"  {kind:8s} " + " ".join(f"{w}:{t:.3f}" for w, t in times.items()), flush=True)
    data["fixed_ratio"], data["budget"] = [], []
    with tempfile.TemporaryDirectory(prefix="kslim-round-") as workdir:
        for name in args.models.split(","):
            model = load(name)
            if model is None:
                print(f"{name}: no trained model on this machine, skipped", flush=True)
                continue
            result = fixed_ratio(name, model, args.runs, workdir)
            data["fixed_ratio"].append(result)
            for r in result["rows"]:
                print(f"  {name:20s} round_to {r['round_to']:2d}  FLOPs red. {r['flops_reduction']:.2f}x  "
                      f"speed-up {r['speedup']:.2f}x  ratio {r['speedup_over_flops_reduction']:.2f}", flush=True)
            if not args.skip_budget:
                data["budget"] += budgeted(name, model, workdir)
            keras.backend.clear_session()
    path = _common.write("round_to", data)
    data["machine"] = _common.machine()
    (path.parent / "round_to.md").write_text(markdown(data))
    print(markdown(data))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
