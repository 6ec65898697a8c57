"""What one BN over a shared stream costs on LiteRT, per value, by how the file writes it.

A pre-activation reader (DenseNet's BN -> ReLU -> 1x1 convolution on the
concatenated stream) starts with a BN that the converter cannot fold into a
convolution: it is a pass over every value of the stream. `kslim.export`
writes it as one 1x1 depthwise convolution with the ReLU fused
(`kslim.deploy.depthwise_bn`); the converter alone writes a MUL and an ADD
(here with the ReLU fused into the ADD). A third form is timed as a bound on
what another lowering could reach: one ADD with the ReLU fused, which is what
would be left if the BN's scale were folded into the reader's weights
(possible only for positive scales, and it would widen the int8 range of the
pass; kslim does not do it).

For each stream shape of keras.applications DenseNet121 at the deploy
benchmark's 96x96 input (a reader late in each dense block), float32 and
int8, this script times four one-reader models interleaved in one process
(LiteRT with XNNPACK, 1 thread, batch 1): the reader's 1x1 convolution to 128
channels alone, and that convolution after each form of the BN. A form's cost
per value is (its model - the convolution alone) / values of the stream; the
convolution's own cost per value is beside it.

It backs the deploy benchmark's reading of DenseNet121's `matched int8` row:
in int8 a stream BN pass costs about as much per value as the 1x1 convolution
that reads it, whatever form it takes, so a plan that keeps the stream whole
keeps that time (`benchmarks/int8_kernels.py` puts it at a quarter of
DenseNet121's int8 time).

Usage:

    python benchmarks/stream_bn_pass.py [--runs 3000] [--block 100]

Writes results/stream_bn_pass.json and stream_bn_pass.md, and prints the table. Under a minute.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402
import deploy  # noqa: E402
from kslim.deploy.convert import _tflite_bytes  # noqa: E402
from kslim.deploy.depthwise_bn import batch_norms_as_depthwise  # noqa: E402
from kslim.deploy.ops import list_ops  # noqa: E402

# DenseNet121 (96x96 input) stream shapes: a reader late in dense blocks 1, 2 and 3, and in block 4.
SHAPES = [(24, 24, 224), (12, 12, 480), (6, 6, 992), (3, 3, 992)]
READER = 128  # DenseNet121's bottleneck: each reader's 1x1 convolution writes 4 x 32 channels
FORMS = {
    "depthwise": "1x1 depthwise convolution, ReLU fused (kslim.export)",
    "mul_add_relu": "MUL, then ADD with the ReLU fused (the converter alone)",
    "add_relu": "ADD with the ReLU fused: the bound, the scale folded into the reader (not done)",
}


def reader(form, shape, seed=0):
    """Input -> `form` of a BN with ReLU (None: no BN) -> 1x1 convolution to READER channels."""
    rng = np.random.default_rng(seed)
    channels = shape[-1]
    scale = rng.uniform(0.5, 1.5, channels).astype("float32")
    shift = rng.normal(0.0, 0.3, channels).astype("float32")
    inputs = keras.Input(shape)
    x = inputs
    if form in ("depthwise", "mul_add_relu"):
        bn = keras.layers.BatchNormalization()
        x = keras.layers.ReLU()(bn(x))
        bn.set_weights([scale, shift, np.zeros(channels, "float32"), np.ones(channels, "float32") - bn.epsilon])
    elif form == "add_relu":
        x = keras.layers.ReLU()(keras.ops.add(x, shift / scale))
    model = keras.Model(inputs, keras.layers.Conv2D(READER, 1)(x))
    return batch_norms_as_depthwise(model) if form == "depthwise" else model


def run_shape(shape, quantize, runs, block, workdir):
    x = np.random.default_rng(1).standard_normal((100,) + shape).astype("float32")
    configs, files = {}, {}
    for form in ("conv_only", *FORMS):
        path = os.path.join(workdir, f"{form}.tflite")
        content = _tflite_bytes(reader(None if form == "conv_only" else form, shape), quantize, x)
        with open(path, "wb") as f:
            f.write(content)
        configs[form], files[form] = (path, 1, True), list_ops(content)  # each form is what it says
    rounds = deploy.interleaved_latency(configs, runs, block)
    us = {form: float(np.median(np.concatenate(r))) * 1e3 for form, r in rounds.items()}
    values = int(np.prod(shape))
    return {"shape": list(shape), "quantize": quantize or "float32", "values": values, "median_us": us,
            "ops": files,
            "conv_us_per_value": us["conv_only"] / values,
            "pass_us_per_value": {form: (us[form] - us["conv_only"]) / values for form in FORMS}}


def table(rows):
    head = ["file", "stream (H, W, C)", "reader 1x1 conv, us/value"] + [f"`{f}` pass, us/value" for f in FORMS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["quantize"], "x".join(map(str, r["shape"])), f"{r['conv_us_per_value']:.2e}"]
        cells += [f"{r['pass_us_per_value'][f]:.2e} ({r['pass_us_per_value'][f] / r['conv_us_per_value']:.2f})"
                  for f in FORMS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="timed invokes per model")
    parser.add_argument("--block", type=int, default=100, help="back-to-back invokes per model and round")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kslim-bn-pass-") as workdir:
        for quantize in ("int8", None):
            for shape in SHAPES:
                rows.append(run_shape(shape, quantize, args.runs, args.block, workdir))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
    data = {"args": vars(args), "forms": FORMS, "reader_channels": READER, "rows": rows,
            "runtime_s": time.perf_counter() - start}
    text = table(rows)
    print(text)
    path = _common.write("stream_bn_pass", data)
    (path.parent / "stream_bn_pass.md").write_text(
        "# What a BN over a shared stream costs per value on LiteRT (`benchmarks/stream_bn_pass.py`)\n\n"
        f"{_common.measured('stream_bn_pass', data['runtime_s'])} LiteRT with XNNPACK, 1 thread, batch 1; "
        f"median of {args.runs} invokes per model, the models of a row interleaved. Each row times a 1x1 "
        f"convolution to {READER} channels alone and after each form of a BN with ReLU over its input (a "
        "DenseNet121 stream shape at 96x96 input); a form's cost per value is its model's time less the "
        "convolution's, over the stream's values; in brackets, as a fraction of the convolution's own cost "
        "per value. Forms: "
        + "; ".join(f"`{k}`: {v}" for k, v in FORMS.items()) + ".\n\n" + text + "\n")


if __name__ == "__main__":
    main()
