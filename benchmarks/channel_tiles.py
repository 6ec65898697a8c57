"""The channel tiles XNNPACK's convolutions run in on this CPU: what `kslim.deploy.channel_tile` measures.

Four staircases, LiteRT with XNNPACK, batch 1, 1 thread, each table's files
timed interleaved in one process (`kslim.deploy.latency.probe_times`), in
float32 and in int8 (as `kslim.export(quantize="int8")` writes them):

- output channels: a 3x3 convolution of a 16x16x64 input to 12 ... 128 channels;
- input channels: a 3x3 convolution of a 16x16 input of 8 ... 192 channels to 32.

Each time is given as a fraction of the 64-channel one, with the tile
`choose_tile` picks from it: the largest of 64, 32, 16 and 8 for which
rounding every width up to a multiple adds at most a fifth of what a tile of
channels would cost if time followed channels (1: no tile). These are the
`round_to` and `round_inputs_to` that latency-budgeted plans use by default,
and that the deploy benchmark's `tiled` rows round to.

Usage:

    python benchmarks/channel_tiles.py [--rounds 40] [--threads 1]

Writes results/channel_tiles.json and channel_tiles.md, and prints the table. About 2 minutes.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _common  # noqa: E402
from kslim.deploy import latency  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40, help="interleaved rounds of 5 invokes per width")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = []
    for quantize in (None, "int8"):
        for inputs in (False, True):
            ms = latency.probe_times(args.threads, args.rounds, 5, quantize=quantize, inputs=inputs)
            rows.append({"quantize": quantize or "float32", "channels": "input" if inputs else "output",
                         "tile": latency.choose_tile(ms), "ms": ms})
            print(_line(rows[-1]), flush=True)
    path = _common.write("channel_tiles", {"threads": args.threads, "rounds": args.rounds, "rows": rows,
                                           "runtime_s": time.perf_counter() - start})
    m = _common.machine()
    lines = ["# Channel tiles (`benchmarks/channel_tiles.py`)", "",
             f"Measured {m['date']} on {m['cpu_model']} ({', '.join(m['simd'])}), {args.threads} thread(s), "
             f"{args.rounds} interleaved rounds of 5 invokes per width; time as a fraction of the 64-channel "
             "one. Output channels: 3x3 convolution of 16x16x64 to each width; input channels: 3x3 convolution "
             "of 16x16 x width to 32.", "",
             "| file | channels | tile | time by width |", "|---|---|---:|---|"]
    lines += [f"| {r['quantize']} | {r['channels']} | {r['tile']} | {_steps(r['ms'])} |" for r in rows]
    (_common.RESULTS / "channel_tiles.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {path} and channel_tiles.md ({(time.perf_counter() - start) / 60:.1f} min)")


def _steps(ms):
    return ", ".join(f"{w}: {t / ms[64]:.2f}" for w, t in sorted(ms.items()))


def _line(row):
    return f"{row['quantize']:8s} {row['channels']:6s} tile {row['tile']:2d}  {_steps(row['ms'])}"


if __name__ == "__main__":
    main()
