"""Where an int8 DenseNet's LiteRT time goes, by XNNPACK kernel, before and after a plan for LiteRT.

The deploy benchmark's `matched int8` rows (`kslim.prune(model, flops_target=f,
runtime="litert", quantize="int8")`, f the FLOPs fraction the paper's plan
keeps) fall short of "speed-up >= 0.9x the FLOPs reduction" on DenseNet121
and only just meet it on DenseNet-40. This script shows why, by sampling the
CPU with `perf record` while the LiteRT interpreter (XNNPACK, 1 thread, batch
1) invokes each int8 file `--invokes` times (in `--repeats` rounds, the
baseline's and the pruned file's alternating), and counting the samples that
fall in each kind of XNNPACK kernel:

- `convolution, igemm`: convolutions read through an indirection buffer (the
  3x3 ones, and the stem);
- `convolution, gemm`: 1x1 convolutions and the classifier;
- `depthwise`: depthwise convolutions, which here are the BNs that read a
  shared stream (`kslim.export` writes each as one 1x1 depthwise convolution
  with its ReLU) and, in int8, the average poolings;
- `copy`: memory moves (concatenations, slices);
- `other XNNPACK`: the rest of the XNNPACK library (quantize, padding,
  pooling, the runtime's own work).

The stem (the layers before the first concatenation: DenseNet121's 7x7
convolution and max pooling, DenseNet-40's first 3x3 convolution) is also
exported alone and sampled in the same rounds: its 3 input channels run in
whole input tiles of the int8 convolution (64 on the AVX-512/AMX machine), so
it costs far more than its multiply-accumulates, and no plan narrows it.

Samples outside XNNPACK (Python, loading the file) are left out. Gammas are
set by the deploy benchmark's rule (`deploy.set_gammas`), not trained, and the
plans are the ones the deploy benchmark times. Each kind's samples, pruned
against baseline, are set beside the same ratio of the multiply-accumulates
the convolutions of that kind compute, as `kslim.profile` counts them.

Needs Linux `perf` (with permission to sample this process). Usage:

    python benchmarks/int8_kernels.py [--models densenet40,densenet121] [--invokes 1000] [--repeats 3]
    python benchmarks/int8_kernels.py --rewrite   # the markdown again from the recorded JSON

Writes results/int8_kernels.json and int8_kernels.md, and prints the table. About 4 minutes.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
import deploy  # noqa: E402

import kslim  # noqa: E402

KINDS = (("convolution, igemm", ("igemm",)), ("convolution, gemm", ("_gemm_",)), ("depthwise", ("dwconv",)),
         ("copy", ("memmove", "memcpy", "_copy_")), ("other XNNPACK", ("xnn_",)))
LOOP = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter
interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)
detail = interpreter.get_input_details()[0]
interpreter.allocate_tensors()
interpreter.set_tensor(detail["index"], np.random.default_rng(0).standard_normal(detail["shape"]).astype(np.float32))
for _ in range(int(sys.argv[2])):
    interpreter.invoke()
"""


def kind(symbol):
    """The kind of XNNPACK kernel a sampled symbol is, or None outside XNNPACK."""
    for name, marks in KINDS:
        if any(m in symbol for m in marks) and (name == "copy" or "xnn_" in symbol):
            return name
    return None


def profile(path, invokes, workdir):
    """`{kind: samples}` and the busiest symbols of `perf record` over `invokes` invokes of `path`."""
    data = os.path.join(workdir, os.path.basename(path) + ".perf")
    subprocess.run(["perf", "record", "-q", "-F", "2000", "-o", data, sys.executable, "-c", LOOP, path, str(invokes)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio", "-n"],
                            check=True, capture_output=True, text=True).stdout
    counts, top = {name: 0 for name, _ in KINDS}, []
    for line in report.splitlines():
        parts = line.split()
        if len(parts) < 4 or line.startswith("#") or not parts[1].isdigit():
            continue
        samples, symbol = int(parts[1]), parts[3]
        name = kind(symbol)
        if name is not None:
            counts[name] += samples
            top.append((samples, symbol))
    return counts, [f"{s} {sym}" for s, sym in sorted(top, reverse=True)[:6]]


def conv_macs(model, profile):
    """Multiply-accumulates per kind of convolution, as `kslim.profile` counts them (`profile`, of `model`):
    1x1 convolutions and Dense layers run as gemm, the other convolutions as igemm."""
    macs = {"convolution, igemm": 0, "convolution, gemm": 0}
    for layer in profile.layers:
        if layer.class_name == "Dense" or (
                layer.class_name == "Conv2D" and tuple(model.get_layer(layer.name).kernel_size) == (1, 1)):
            macs["convolution, gemm"] += layer.flops // 2
        elif layer.class_name == "Conv2D":
            macs["convolution, igemm"] += layer.flops // 2
    return macs


def stem(model):
    """The layers before the model's first concatenation, as a model: what a DenseNet computes before its
    first dense block."""
    import keras

    first = next(layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate))
    return keras.Model(model.inputs, first.input[0], name=f"{model.name}_stem")


def run_model(name, invokes, repeats, workdir):
    model, target = deploy.synthetic(name)
    plan = kslim.plan(model, flops_target=target, runtime="litert", quantize="int8")
    calibration = deploy.calibration(model)
    record = {"flops_target": target, "channels_pruned": plan.factors[1], "variants": {}}
    paths = {}
    slim = kslim.prune(model, plan=plan)
    stems = [stem(m) for m in (model, slim)]
    record["stem_flops"] = [int(kslim.profile(m).flops) for m in stems]  # the plan's stem: the same
    for tag, m in (("baseline int8", model), ("matched int8", slim), ("stem int8", stems[0])):
        paths[tag] = os.path.join(workdir, f"{name}_{tag.replace(' ', '_')}.tflite")
        report = kslim.export(m, paths[tag], quantize="int8", representative_data=calibration, atol=float("inf"))
        counted = kslim.profile(m)
        record["variants"][tag] = {"flops": int(counted.flops), "selections": report.selections,
                                   "macs": conv_macs(m, counted), "samples": {k: 0 for k, _ in KINDS}, "rounds": []}
    for _ in range(repeats):  # alternate the files, so that the machine's drift falls on all
        for tag, path in paths.items():
            counts, top = profile(path, invokes, workdir)
            v = record["variants"][tag]
            v["rounds"].append(counts)
            v["samples"] = {k: v["samples"][k] + counts[k] for k in counts}
            v["top_symbols"] = top  # the last round's
            print(f"  {name} {tag}: {counts}", flush=True)
    return record


def table(results):
    rows = [["model", "kind of kernel", "samples, baseline int8", "share", "samples, matched int8", "time ratio",
             "MACs ratio"]]
    for name, record in results.items():
        base, pruned = record["variants"]["baseline int8"], record["variants"]["matched int8"]
        total = sum(base["samples"].values())
        for kind_name, _ in KINDS:
            b, p = base["samples"][kind_name], pruned["samples"][kind_name]
            macs = (f"{pruned['macs'][kind_name] / base['macs'][kind_name]:.2f}"
                    if base["macs"].get(kind_name) else "-")
            rows.append([name, kind_name, str(b), f"{b / total:.0%}", str(p), f"{p / b:.2f}" if b else "-", macs])
        p_total = sum(pruned["samples"].values())
        rows.append([name, "all XNNPACK", str(total), "100%", str(p_total), f"{p_total / total:.2f}",
                     f"{pruned['flops'] / base['flops']:.2f} (FLOPs)"])
        if "stem int8" in record["variants"]:
            s = record["variants"]["stem int8"]
            n = sum(s["samples"].values())
            rows.append([name, f"the stem alone ({s['flops'] / base['flops']:.1%} of the FLOPs)", str(n),
                         f"{n / total:.0%}", "-", "-", "-"])
    return deploy._md_table(rows)


def _bound(base, pruned, fixed=None):
    """The time ratio had every convolution kind's samples fallen by its MACs ratio and the rest stayed as measured
    in the pruned file, and that speed-up as a fraction of the FLOPs reduction; with `fixed` (the stem's variant),
    its samples and MACs are kept out of that scaling: they stay as they are."""
    samples = 0.0
    for k, _ in KINDS:
        s_fixed = fixed["samples"][k] if fixed else 0
        m_fixed = fixed["macs"].get(k, 0) if fixed else 0
        if base["macs"].get(k) and base["macs"][k] > m_fixed:
            scale = (pruned["macs"][k] - m_fixed) / (base["macs"][k] - m_fixed)
            samples += s_fixed + (base["samples"][k] - s_fixed) * scale
        else:
            samples += pruned["samples"][k]
    ratio = samples / sum(base["samples"].values())
    return {"time_ratio": ratio, "of_flops_reduction": pruned["flops"] / base["flops"] / ratio}


def bounds(results):
    """Per model, `_bound` of the plan; where the stem was sampled (`stem int8`) and the plan left it as it was,
    also with the stem kept out of the scaling (`stem_fixed`: no plan narrows it)."""
    out = {}
    for name, record in results.items():
        base, pruned = record["variants"]["baseline int8"], record["variants"]["matched int8"]
        out[name] = _bound(base, pruned)
        stem_v = record["variants"].get("stem int8")
        if stem_v is not None and len(set(record["stem_flops"])) == 1:  # the plan did not narrow the stem
            out[name]["stem_fixed"] = _bound(base, pruned, stem_v)
    return out


def write_markdown(data):
    args, results = data["args"], data["results"]
    lines = "\n".join(
        f"- {name}: {b['time_ratio']:.2f} of the baseline's time, a speed-up {b['of_flops_reduction']:.2f}x "
        "the FLOPs reduction" + (
            f"; with the stem kept as it is (its samples not scaled by the MACs of the other convolutions of its "
            f"kind) {b['stem_fixed']['time_ratio']:.2f}, {b['stem_fixed']['of_flops_reduction']:.2f}x"
            if "stem_fixed" in b else "") for name, b in bounds(results).items())
    (_common.RESULTS / "int8_kernels.md").write_text(
        f"# Where int8 DenseNet time goes, by XNNPACK kernel (`benchmarks/int8_kernels.py`)\n\n"
        f"{_common.measured('int8_kernels', data['runtime_s'])} `perf record` "
        f"(2000 Hz) over {args['repeats']} x {args['invokes']} invokes of each int8 file (the rounds alternating), "
        f"LiteRT with XNNPACK, 1 thread, batch 1; samples in XNNPACK's kernels only. `matched int8` is the deploy "
        f"benchmark's plan (`flops_target` = the paper's plan's FLOPs, `runtime=\"litert\"`, "
        f"`quantize=\"int8\"`; synthetic gammas). Time ratio: matched / baseline samples; MACs ratio: the same "
        f"for the multiply-accumulates of that kind of convolution.\n\n{table(results)}\n\n"
        "Had every convolution's time fallen exactly as its multiply-accumulates did, the rest (the stream BN "
        f"passes, copies) staying as measured, the matched int8 files would have run in:\n\n{lines}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="densenet40,densenet121")
    parser.add_argument("--invokes", type=int, default=1000, help="invokes per file and round under perf record")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, the two files alternating")
    parser.add_argument("--rewrite", action="store_true",
                        help="rewrite int8_kernels.md from the recorded int8_kernels.json; measure nothing")
    args = parser.parse_args()
    if args.rewrite:
        write_markdown(json.loads((_common.RESULTS / "int8_kernels.json").read_text()))
        return
    if shutil.which("perf") is None:
        sys.exit("int8_kernels.py needs Linux `perf` (apt install linux-perf) to sample the interpreter.")
    start = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="kslim-int8-kernels-") as workdir:
        for name in args.models.split(","):
            results[name] = run_model(name, args.invokes, args.repeats, workdir)
    data = {"args": vars(args), "results": results, "runtime_s": time.perf_counter() - start}
    print(table(results))
    _common.write("int8_kernels", data)
    write_markdown(data)


if __name__ == "__main__":
    main()
