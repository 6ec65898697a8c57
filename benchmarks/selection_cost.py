"""When a sliced channel selection pays on LiteRT: the cost model behind `selections="sliceable"`.

A reader of a shared stream (BN -> ReLU -> convolution) that keeps K of the
stream's C channels in k runs of consecutive channels is exported by
`kslim.export` as k static slices and a concatenation, then a BN, ReLU and
convolution over K channels. This script times such a block against the same
block reading the whole stream: LiteRT with XNNPACK, float32, batch 1, 1
thread (`--threads N`: N), the two files interleaved in one process. The
grid covers the streams of the deploy benchmark's models (pre-act ResNet-164 at 32x32,
ResNet50V2 at 96x96 with 1x1 readers, DenseNet-40 with 3x3 readers), k = 1,
2, 4 and kept fractions 0.6 and 0.9. It fits, by least squares, the time a
selection saves in microseconds as

    per_mac * MACs saved - per_run * k - per_element * (positions x K)

(the slices copy the kept values; adding a constant term, or the BN and ReLU
work on the dropped channels, fits no better and gives constants of the wrong
sign) and prints each cell's measured and predicted saving. It also times a
3x3 reader with and without a `BorderBias` (what a pruned channel with a
nonzero constant adds to a zero-padded reader: one image ADD) and fits its
cost per output value, `per_border_element`. `kslim.pruning.budget`
holds the fitted constants (`SLICE_COST`): with `selections="sliceable"` a
stream reader keeps its selection only where the predicted saving is positive.

With `--threads 2` the same grid is timed with 2 interpreter threads: each
slice costs 2 to 2.7x more there (XNNPACK wakes the second thread for every
operator, and a copy of a few thousand values gains nothing from it) and a
multiply-accumulate saved is worth about half, so the planner and
`kslim.export` slice only what pays at both thread counts.

With `--quantize int8` the same grid is timed as int8 files (calibrated on
random inputs) and fitted to the int8 constants. There the stream is made in
the graph, as in the models: a convolution of the input concatenated to it,
and the stream also goes on to a second concatenation with the reader's
output. That matters: the converter gives an in-graph stream that slices read
a requantized copy of its own (a QUANTIZE over the whole stream), which a
stream that is the model's input does not show. A multiply-accumulate saved
is worth about 3x less in int8 (2.4x on the AMD machine), so a slice saves
far less.

Usage:

    python benchmarks/selection_cost.py [--runs 600] [--quantize int8] [--threads 2]

Writes results/selection_cost.json (selection_cost_int8.json,
selection_cost_2threads.json, selection_cost_int8_2threads.json) and prints
the table; each run takes 3 to 5 minutes.
"""

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402
import deploy  # noqa: E402
import kslim  # noqa: E402

L = keras.layers
# (positions per side, stream channels, reader output channels, reader kernel): the deploy models' streams.
SHAPES = [
    (32, 64, 16, 1), (16, 128, 32, 1), (8, 256, 64, 1),  # pre-act ResNet-164, CIFAR-10
    (24, 256, 64, 1), (12, 512, 128, 1), (6, 1024, 256, 1),  # ResNet50V2 at 96x96
    (32, 100, 12, 3), (16, 160, 12, 3),  # DenseNet-40
]
RUNS = (1, 2, 4)
KEPT = (0.6, 0.9)
FEATURES = ("per_mac", "per_run", "per_element")


def indices(channels, kept, runs):
    """`kept` of `channels` positions in `runs` runs, the gaps spread evenly."""
    n_kept = max(runs, int(round(kept * channels)))
    sizes = [n_kept // runs + (i < n_kept % runs) for i in range(runs)]
    gap = (channels - n_kept) // runs
    out, start = [], gap
    for size in sizes:
        out += list(range(start, start + size))
        start += size + gap
    return out


GROWTH = 12  # int8: the in-graph stream's last channels come from a convolution, as a dense layer's


def block(side, channels, filters, kernel, select=None, stream=False):
    """BN -> ReLU -> convolution reading `channels` (through `select`); with `stream`, the channels
    are made in the graph and also concatenated to the reader's output (see the docstring)."""
    x = inp = keras.Input((side, side, channels - GROWTH if stream else channels))
    if stream:
        grown = L.Conv2D(GROWTH, 3, padding="same")(L.ReLU()(L.BatchNormalization()(inp)))
        x = L.Concatenate()([inp, grown])
    whole = x
    if select is not None:
        x = kslim.layers.ChannelSelect(select)(x)
    x = L.Conv2D(filters, kernel, padding="same")(L.ReLU()(L.BatchNormalization()(x)))
    return keras.Model(inp, L.Concatenate()([whole, x]) if stream else x)


def _random_batch_norms(model, rng):
    """BN scales and offsets that are not the identity, so that int8 calibration sees real ranges."""
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype("float32"),
                               rng.uniform(-0.5, 0.5, beta.shape).astype("float32"), mean, var])


def _export(model, path, quantize, **kwargs):
    """`kslim.export` to `path`; int8 calibrated on 50 standard-normal inputs, timed, not scored."""
    calibration = None
    if quantize:
        calibration = deploy.calibration(model, 50)
    return kslim.export(model, path, overwrite=True, quantize=quantize, representative_data=calibration,
                        atol=float("inf") if quantize else None, **kwargs)


def _time_pair(paths, runs_per_model, threads=1):
    """`(us of the first file, us the second saves over it)`: medians of interleaved rounds, paired."""
    (first, a), (second, b) = paths.items()
    times = deploy.interleaved_latency({first: (a, threads, True), second: (b, threads, True)}, runs_per_model,
                                       block=20)
    saved = np.median([np.median(x) - np.median(y) for x, y in zip(times[first], times[second])])
    return float(np.median(np.concatenate(times[first])) * 1e3), float(saved * 1e3)


def measure(cell, runs_per_model, workdir, quantize=None, threads=1):
    side, channels, filters, kernel, k, kept = cell
    select = indices(channels, kept, k)
    paths = {}
    stream = quantize == "int8"
    for name, model in (("whole", block(side, channels, filters, kernel, stream=stream)),
                        ("sliced", block(side, channels, filters, kernel, select, stream=stream))):
        _random_batch_norms(model, np.random.default_rng(0))
        paths[name] = os.path.join(workdir, f"{name}.tflite")
        report = _export(model, paths[name], quantize, selections="slices")
        assert not report.selections or report.selections["sliced"] == 1
    whole_us, saved_us = _time_pair(paths, runs_per_model, threads)
    macs_saved = side * side * kernel * kernel * filters * (channels - len(select))
    return {"side": side, "channels": channels, "filters": filters, "kernel": kernel, "runs": k,
            "kept": len(select), "macs_saved": macs_saved, "elements": side * side * len(select),
            "dropped": side * side * (channels - len(select)),
            "whole_us": whole_us, "saved_us": saved_us}


# (positions per side, input channels, output channels) of 3x3 readers that get a BorderBias.
BORDER_SHAPES = [(32, 64, 12), (16, 128, 12), (8, 160, 12), (32, 16, 16), (16, 32, 32), (8, 64, 64)]


def border_cost(side, channels, filters, runs_per_model, workdir, quantize=None, threads=1):
    """Times a 3x3 reader with and without the `BorderBias` that a pruned constant channel gives it."""
    paths = {}
    for name in ("plain", "border"):
        inp = keras.Input((side, side, channels))
        x = L.Conv2D(filters, 3, padding="same")(inp)
        if name == "border":
            border = kslim.layers.BorderBias((side, side), 3)
            x = border(x)
            border.set_weights([np.random.default_rng(0).uniform(-0.1, 0.1, (3, 3, 1, filters)).astype("float32")])
        model = keras.Model(inp, L.Concatenate()([inp, x]))
        paths[name] = os.path.join(workdir, f"{name}.tflite")
        _export(model, paths[name], quantize)
    plain_us, saved_us = _time_pair(paths, runs_per_model, threads)
    return {"side": side, "channels": channels, "filters": filters, "elements": side * side * filters,
            "plain_us": plain_us, "cost_us": -saved_us}


def design(rows):
    return np.array([[r["macs_saved"], -r["runs"], -r["elements"]] for r in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=600, help="timed invokes per file")
    parser.add_argument("--quantize", choices=("int8",), default=None, help="time int8 files instead of float32")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT interpreter threads")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kslim-slice-cost-") as workdir:
        for side, channels, filters, kernel in SHAPES:
            for k in RUNS:
                for kept in KEPT:
                    rows.append(measure((side, channels, filters, kernel, k, kept), args.runs, workdir, args.quantize,
                                        args.threads))
                    r = rows[-1]
                    print(f"{side:3d}x{side:<3d} C={channels:5d} -> {filters:4d} k{kernel} runs={k} kept={r['kept']:5d}: "
                          f"whole {r['whole_us']:8.1f} us, sliced saves {r['saved_us']:7.1f} us", flush=True)
        borders = []
        for side, channels, filters in BORDER_SHAPES:
            borders.append(border_cost(side, channels, filters, args.runs, workdir, args.quantize, args.threads))
            r = borders[-1]
            print(f"{side:3d}x{side:<3d} C={channels:5d} -> {filters:4d} k3 + BorderBias: "
                  f"plain {r['plain_us']:8.1f} us, the border adds {r['cost_us']:6.1f} us", flush=True)
    coef, *_ = np.linalg.lstsq(design(rows), np.array([r["saved_us"] for r in rows]), rcond=None)
    model = dict(zip(FEATURES, (float(c) for c in coef)))
    elements = np.array([r["elements"] for r in borders], float)
    model["per_border_element"] = float(elements @ np.array([r["cost_us"] for r in borders]) / (elements @ elements))
    predicted = design(rows) @ coef
    agree = int(sum((p > 0) == (r["saved_us"] > 0) for p, r in zip(predicted, rows)))
    for r, p in zip(rows, predicted):
        r["predicted_us"] = float(p)
    print("fit (microseconds):", {k: f"{v:.4g}" for k, v in model.items()})
    print(f"sign of the saving predicted right in {agree} of {len(rows)} cells")
    name = ("selection_cost" + (f"_{args.quantize}" if args.quantize else "")
            + (f"_{args.threads}threads" if args.threads > 1 else ""))
    path = _common.write(name, {"runs": args.runs, "threads": args.threads, "quantize": args.quantize or "float32",
                                "model": model, "sign_agreement": [agree, len(rows)], "rows": rows,
                                "border_rows": borders})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
