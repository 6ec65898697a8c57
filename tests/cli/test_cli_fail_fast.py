"""Every command refuses a missing file, an existing output or a wrong combination of flags before it
imports TensorFlow (18-36 s under load), in one line naming the flag."""

import os
import subprocess
import sys

import pytest

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin")


@pytest.fixture
def no_tensorflow(tmp_path):
    """A PYTHONPATH on which `import tensorflow` and `import keras` fail: a command that imports them
    before its check fails with their message, not its own."""
    for name in ("tensorflow", "keras"):
        package = tmp_path / "fake" / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(f"raise ImportError('{name} was imported')\n")
    return {**os.environ, "PYTHONPATH": str(tmp_path / "fake")}


CASES = [
    (["kslim-prune", "--model", "missing.keras", "--ratio", "0.5", "--output", "o.keras"],
     "kslim-prune: error: flag --model=missing.keras: no such file; check the path."),
    (["kslim-prune", "--model", "m.keras", "--output", "o.keras"],
     "kslim-prune: error: give a budget (--ratio, --threshold, --flops_target, --params_target or "
     "--latency_target) or --plan (a plan file)."),
    (["kslim-prune", "--model", "m.keras", "--ratio", "0.5", "--output", "exists.keras"],
     "kslim-prune: error: --output=exists.keras already exists; pass --overwrite to replace it."),
    (["kslim-prune", "--model", "m.keras", "--ratio", "0.5", "--output", "o.keras", "--plan", "no.json"],
     "kslim-prune: error: flag --plan=no.json: no such file; check the path."),
    (["kslim-prune", "--model", "m.keras", "--ratio", "0.5", "--threshold", "0.1", "--output", "o.keras"],
     "kslim-prune: error: give one budget, not --ratio and --threshold."),
    (["kslim-export", "--model", "m.keras", "--output", "o.tflite", "--quantize", "int4"],
     "kslim-export: error: flag --quantize=int4: must be none (float32), float16, dynamic or int8."),
    (["kslim-export", "--model", "missing.keras", "--output", "o.tflite"],
     "kslim-export: error: flag --model=missing.keras: no such file; check the path."),
    (["kslim-export", "--model", "m.keras", "--output", "exists.keras"],
     "kslim-export: error: --output=exists.keras already exists; pass --overwrite to replace it."),
    (["kslim-export", "--model", "m.keras", "--output", "o.tflite", "--quantize", "int8"],
     "kslim-export: error: --quantize int8 needs calibration data; pass --data"),
    (["kslim-train", "--model", "missing.keras", "--output", "o.keras"],
     "kslim-train: error: flag --model=missing.keras: no such file; check the path."),
    (["kslim-train", "--model", "mlp", "--output", "exists.keras"],
     "kslim-train: error: --output=exists.keras already exists; pass --overwrite to replace it."),
    (["kslim-train", "--model", "mlp", "--output", "o.h5"],
     "kslim-train: error: --output=o.h5 must end in .keras"),
    (["kslim-train", "--model", "mlp", "--init", "m.keras", "--output", "o.keras"],
     "kslim-train: error: give --model (a zoo name, or a .keras file to train from scratch) or --init"),
    (["kslim-train", "--model", "mlp", "--data", "missing.npz", "--output", "o.keras"],
     "kslim-train: error: flag --data=missing.npz: no such file or folder"),
    (["kslim-slim", "--model", "missing.keras"],
     "kslim-slim: error: flag --model=missing.keras: no such file; check the path."),
    (["kslim-slim", "--data", "no/such/folder"], "kslim-slim: error: flag --data=no/such/folder: no such file"),
    (["kslim-info", "--model", "missing.keras"],
     "kslim-info: error: flag --model=missing.keras: no such file; check the path."),
    (["kslim-prune", "--model", "m.keras", "--ratio", "0.5", "--output", "missing/o.keras"],
     "kslim-prune: error: --output=missing/o.keras: the folder "),
]


@pytest.mark.parametrize("argv,message", CASES, ids=[" ".join(c[0][:1] + c[0][3:5]) for c in CASES])
def test_paths_and_combinations_are_refused_before_tensorflow_loads(argv, message, tmp_path, no_tensorflow):
    (tmp_path / "m.keras").write_bytes(b"")
    (tmp_path / "exists.keras").write_bytes(b"")
    result = subprocess.run([sys.executable, os.path.join(BIN, argv[0]), *argv[1:]], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, env=no_tensorflow)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith(message), lines[0]
    assert sorted(os.listdir(tmp_path)) == ["exists.keras", "fake", "m.keras"]
