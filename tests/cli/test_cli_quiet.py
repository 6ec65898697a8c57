"""The commands print what they mean, in their words: no converter or libjpeg lines from C++, and every
Python warning as one line `<command>: warning: <message>`, not a source line."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin")
_ENV = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a user runs them


def _run(command, *args, cwd=None):
    return subprocess.run([sys.executable, os.path.join(BIN, command), *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=_ENV, cwd=cwd)


def _bn_model(shape, classes):
    model = keras.Sequential([keras.Input(shape), keras.layers.Conv2D(8, 3), keras.layers.BatchNormalization(),
                              keras.layers.ReLU(), keras.layers.Flatten(), keras.layers.Dense(classes)])
    return model


def test_an_int8_export_prints_no_converter_lines(tmp_path):
    _bn_model((28, 28, 1), 10).save(tmp_path / "m.keras")
    result = _run("kslim-export", "--model", tmp_path / "m.keras", "--output", tmp_path / "m.tflite",
                  "--quantize", "int8", "--data", "mnist", "--limit", "64", "--atol", "1e9")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # was: Ignored output_format, fully_quantize: 0, inference_type: 6, ...
    assert "Exported" in result.stdout


def test_a_truncated_jpeg_is_kslims_one_line_without_libjpegs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in ("a", "b"):
            os.makedirs(tmp_path / "images" / split / name)
            for i in range(4):
                pixels = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "images" / split / name / f"{i}.jpg")
    broken = tmp_path / "images" / "train" / "a" / "0.jpg"
    broken.write_bytes(broken.read_bytes()[:-2])
    result = _run("kslim-train", "--model", "mlp", "--data", tmp_path / "images", "--epochs", "1",
                  "--output", tmp_path / "o.keras")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"kslim-train: error: {broken} is not a readable image (jpeg::Uncompress failed. Invalid JPEG data or "
        "crop window.); replace it or delete it from the folder (or the archive)."
    ]


def test_a_warning_is_one_line_in_the_commands_words(tmp_path):
    _bn_model((8, 8, 3), 3).save(tmp_path / "untrained.keras")  # every gamma 1.0: nothing has separated
    result = _run("kslim-prune", "--model", tmp_path / "untrained.keras", "--ratio", "0.5",
                  "--output", tmp_path / "slim.keras")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("kslim-prune: warning: ") for line in lines), result.stderr
    assert "UserWarning" not in result.stderr and ".py:" not in result.stderr


_WORDS = """
import importlib.util, sys
from absl import flags
spec = importlib.util.spec_from_file_location("command", sys.argv[1])
command = importlib.util.module_from_spec(spec)
spec.loader.exec_module(command)
flags.DEFINE_bool("overwrite", False, "")
flags.DEFINE_bool("plots", True, "")
flags.DEFINE_float("atol", None, "")
flags.DEFINE_string("selections", None, "")
flags.FLAGS(["x"])
print(command.Command("kslim-x").words(sys.argv[2]))
"""


@pytest.mark.parametrize("library,command", [
    ("b.keras already exists; pass overwrite=True to replace it.", "b.keras already exists; pass --overwrite to replace it."),
    ("pass a looser atol (atol=0.52 would pass).", "pass a looser atol (--atol=0.52 would pass)."),
    ("or pass plots=False.", "or pass --noplots."),
    ("Permission denied: '/data/.kslim-4492-c28sq26o.tmp/m.tflite'", "Permission denied: '/data/m.tflite'"),
    ("selections='gather' writes one; lam=1e-3 is not a flag here", "--selections=gather writes one; lam=1e-3 is not a flag here"),
])
def test_a_library_argument_that_is_a_flag_is_written_as_the_flag(library, command):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "kslim", "_internal", "command.py")
    done = subprocess.run([sys.executable, "-c", _WORDS, path, library], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == command
