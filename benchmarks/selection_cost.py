"""When a sliced channel selection pays on LiteRT: the cost model behind `selections="sliceable"`.

A reader of a shared stream (BN -> ReLU -> convolution) that keeps K of the
stream's C channels in k runs of consecutive channels is exported by
`kslim.export` as k static slices and a concatenation, then a BN, ReLU and
convolution over K channels. This script times such a block against the same
block reading the whole stream: LiteRT with XNNPACK, float32, batch 1, 1
thread, the two files interleaved in one process. The grid covers the
streams of the deploy benchmark's models (pre-act ResNet-164 at 32x32,
ResNet50V2 at 96x96 with 1x1 readers, DenseNet-40 with 3x3 readers), k = 1,
2, 4 and kept fractions 0.6 and 0.9. It fits, by least squares, the time a
selection saves in microseconds as

    per_mac * MACs saved - per_run * k - per_element * (positions x K)

(the slices copy the kept values; adding a constant term, or the BN and ReLU
work on the dropped channels, fits no better and gives constants of the wrong
sign) and prints each cell's measured and predicted saving. `kslim.pruning.budget`
holds the fitted constants (`SLICE_COST`): with `selections="sliceable"` a
stream reader keeps its selection only where the predicted saving is positive.

Usage:

    python benchmarks/selection_cost.py [--runs 600]

Writes results/selection_cost.json and prints the table.
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


def block(side, channels, filters, kernel, select=None):
    x = inp = keras.Input((side, side, channels))
    if select is not None:
        x = kslim.layers.ChannelSelect(select)(x)
    x = L.ReLU()(L.BatchNormalization()(x))
    return keras.Model(inp, L.Conv2D(filters, kernel, padding="same")(x))


def measure(cell, runs_per_model, workdir):
    side, channels, filters, kernel, k, kept = cell
    select = indices(channels, kept, k)
    paths = {}
    for name, model in (("whole", block(side, channels, filters, kernel)),
                        ("sliced", block(side, channels, filters, kernel, select))):
        paths[name] = os.path.join(workdir, f"{name}.tflite")
        report = kslim.export(model, paths[name], selections="slices", overwrite=True)
        assert not report.selections or report.selections["sliced"] == 1
    times = deploy.interleaved_latency({key: (p, 1, True) for key, p in paths.items()}, runs_per_model, block=20)
    saved_us = float(np.median([np.median(w) - np.median(s) for w, s in zip(times["whole"], times["sliced"])]) * 1e3)
    macs_saved = side * side * kernel * kernel * filters * (channels - len(select))
    return {"side": side, "channels": channels, "filters": filters, "kernel": kernel, "runs": k,
            "kept": len(select), "macs_saved": macs_saved, "elements": side * side * len(select),
            "dropped": side * side * (channels - len(select)),
            "whole_us": float(np.median(np.concatenate(times["whole"])) * 1e3), "saved_us": saved_us}


def design(rows):
    return np.array([[r["macs_saved"], -r["runs"], -r["elements"]] for r in rows])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=600, help="timed invokes per file")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="kslim-slice-cost-") as workdir:
        for side, channels, filters, kernel in SHAPES:
            for k in RUNS:
                for kept in KEPT:
                    rows.append(measure((side, channels, filters, kernel, k, kept), args.runs, workdir))
                    r = rows[-1]
                    print(f"{side:3d}x{side:<3d} C={channels:5d} -> {filters:4d} k{kernel} runs={k} kept={r['kept']:5d}: "
                          f"whole {r['whole_us']:8.1f} us, sliced saves {r['saved_us']:7.1f} us", flush=True)
    coef, *_ = np.linalg.lstsq(design(rows), np.array([r["saved_us"] for r in rows]), rcond=None)
    model = dict(zip(FEATURES, (float(c) for c in coef)))
    predicted = design(rows) @ coef
    agree = int(sum((p > 0) == (r["saved_us"] > 0) for p, r in zip(predicted, rows)))
    for r, p in zip(rows, predicted):
        r["predicted_us"] = float(p)
    print("fit (microseconds):", {k: f"{v:.4g}" for k, v in model.items()})
    print(f"sign of the saving predicted right in {agree} of {len(rows)} cells")
    path = _common.write("selection_cost", {"runs": args.runs, "threads": 1, "model": model,
                                            "sign_agreement": [agree, len(rows)], "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
