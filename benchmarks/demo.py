"""How long `make demo` takes: `kslim-slim` with no flags, timed from the shell, and the summary it prints.

`make demo` runs `kslim-slim` with its defaults: the paper's MNIST MLP
(784-500-300-10 with BN) on the bundled real MNIST, 10 epochs of L1 sparsity
training, 80% of the hidden neurons pruned, 5 epochs of fine-tuning. This
script runs that command in a new process (into a temporary run folder, so
nothing is resumed), times it from start to exit (Python and TensorFlow
start-up included, the install that `make` may do first not), and records the
summary line it prints (`mlp slimmed in 1 pass: params ... -> ...`), with the machine.

Usage:

    nice python benchmarks/demo.py

Writes results/demo.json. About a minute.
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

BIN = pathlib.Path(__file__).resolve().parents[1] / "bin" / "kslim-slim"


def main():
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(BIN), "--run_dir", os.path.join(tmp, "run")],
                              capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - start
    summary = [line for line in done.stdout.splitlines() if " slimmed in " in line][-1]
    data = {"machine": _common.machine(), "loadavg_at_end": round(os.getloadavg()[0], 2),
            "command": "kslim-slim", "seconds": round(seconds, 1), "summary": summary}
    path = _common.RESULTS / "demo.json"
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{seconds:.0f} s: {summary}\nwrote {path}")


if __name__ == "__main__":
    main()
