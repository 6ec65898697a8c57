"""bin/kslim-export: a real int8 export with --benchmark, and its one-line errors."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

import kslim
from kslim.cli.export import export_file
from kslim.deploy import builtin_ops, list_ops

BIN = pathlib.Path(__file__).resolve().parents[2] / "bin" / "kslim-export"


def _run(*args):
    return subprocess.run(
        [sys.executable, str(BIN), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A small slimmed-looking MNIST model (with a ChannelSelect), briefly trained, saved as .keras."""
    keras.utils.set_random_seed(0)
    x = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same")(x)
    h = keras.layers.BatchNormalization(momentum=0.9)(h)
    h = keras.layers.ReLU()(h)
    h = kslim.layers.ChannelSelect([0, 1, 3, 4, 6, 7])(h)
    h = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Flatten()(h)
    model = keras.Model(x, keras.layers.Dense(10, activation="softmax")(h), name="slim")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(kslim.data.load("mnist", limit=3000, shuffle=False), epochs=1, shuffle=False, verbose=0)
    path = tmp_path_factory.mktemp("model") / "slim.keras"
    model.save(path)
    keras.backend.clear_session()
    return path


def test_int8_export_with_benchmark(tmp_path, keras_file):
    output = tmp_path / "slim.tflite"
    result = _run(
        "--model", keras_file, "--output", output, "--quantize", "int8",
        "--data", "mnist", "--limit", "500", "--benchmark", "--runs", "5",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"Exported {output} (tflite int8)" in result.stdout
    assert "on 500 validation_data inputs" in result.stdout
    assert "accuracy        keras" in result.stdout
    assert "latency 1 thread" in result.stdout and "latency 2 threads" in result.stdout
    assert "run-time memory" in result.stdout
    ops = list_ops(output)
    assert set(ops) <= builtin_ops() and "GATHER" not in ops and "QUANTIZE" in ops
    assert f"{os.path.getsize(output):,} bytes" in result.stdout


def test_not_a_keras_file_is_a_one_line_error(tmp_path):
    bogus = tmp_path / "model.keras"
    bogus.write_text("not a zip")
    output = tmp_path / "out.tflite"
    result = _run("--model", bogus, "--output", output)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"kslim-export: error: {bogus} is not a Keras model file")
    assert "Traceback" not in result.stderr
    assert not output.exists()
    assert os.listdir(tmp_path) == ["model.keras"]


# The remaining errors come from the library function the command calls; they are raised before
# the model is loaded, so checking them in-process is fast and checks the same messages.
@pytest.mark.parametrize(
    "case,error,message",
    [
        ("missing_model", FileNotFoundError, "No model file at .*missing.keras'; check the --model path"),
        ("output_is_input", ValueError, "is the input model file; choose another output path"),
        ("output_exists", FileExistsError, "already exists; pass --overwrite to replace it"),
        ("bad_quantize", ValueError, r"quantize='int4' is not supported; use none \(float32\), float16"),
        ("int8_without_data", ValueError, "needs calibration data; pass --data"),
        ("bad_format", ValueError, r"format='onnx' is not supported"),
    ],
)
def test_export_file_errors(tmp_path, case, error, message):
    model = tmp_path / "m.keras"
    model.write_bytes(b"unused: the checks run before loading")
    output = tmp_path / "m.tflite"
    kwargs = {}
    if case == "missing_model":
        model = tmp_path / "missing.keras"
    elif case == "output_is_input":
        output = model
    elif case == "output_exists":
        output.write_bytes(b"keep")
    elif case == "bad_quantize":
        kwargs["quantize"] = "int4"
    elif case == "int8_without_data":
        kwargs["quantize"] = "int8"
    elif case == "bad_format":
        kwargs["format"] = "onnx"
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error, match=message):
        export_file(model, output, **kwargs)
    assert sorted(os.listdir(tmp_path)) == before


def test_export_file_saved_model_with_dataset(tmp_path, keras_file):
    report = export_file(keras_file, tmp_path / "saved", format="saved_model", data="mnist", limit=300)
    assert report.num_samples == 300 and report.parity_data == "validation_data"
    assert report.keras_accuracy == report.exported_accuracy > 0.8
    assert (tmp_path / "saved" / "saved_model.pb").exists()


def test_a_bad_benchmark_flag_fails_before_the_file_is_written(keras_file, tmp_path):
    out = tmp_path / "m.tflite"
    result = subprocess.run(
        [sys.executable, str(BIN), "--model", str(keras_file), "--output", str(out), "--benchmark",
         "--runs", "0"], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode != 0 and "kslim-export: error: flag --runs=0: must be an integer >= 1." in result.stderr
    assert not out.exists()


def test_export_file_passes_selections_and_refuses_its_input_through_a_hard_link(tmp_path, keras_file):
    gathered = export_file(keras_file, tmp_path / "g.tflite", selections="gather")
    assert "GATHER" in list_ops(gathered.path) and gathered.selections["gathered"] == 1
    link = tmp_path / "same.tflite"
    os.link(keras_file, link)
    with pytest.raises(ValueError, match="is the input model file"):
        export_file(keras_file, link, overwrite=True)
    assert os.path.samefile(link, keras_file)


def test_atol_is_a_flag_and_the_parity_failure_names_it_with_a_value_that_passes(tmp_path, keras_file):
    output = tmp_path / "slim.tflite"
    common = ["--model", keras_file, "--output", output, "--quantize", "int8", "--data", "mnist", "--limit", "200"]
    refused = _run(*common, "--atol", "0")
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr[-2000:]
    line = lines[0]
    assert line.startswith("kslim-export: error: ")
    assert "failed the parity check on 200 validation_data inputs" in line
    assert "Keras and the file give the same class on " in line and "the file's accuracy is " in line
    suggested = re.search(r"pass a looser atol \(--atol=([\d.e+-]+) would pass\)\.$", line)
    assert suggested, line
    assert not output.exists()
    passed = _run(*common, "--atol", suggested.group(1))
    assert passed.returncode == 0, passed.stderr[-2000:]
    assert re.search(r"same class +\d+\.\d\d% of the 200 validation_data inputs get the same class from "
                     r"Keras and from the file", passed.stdout), passed.stdout
    assert re.search(r"accuracy +keras \d+\.\d\d% +exported \d+\.\d\d% \(the file's", passed.stdout)
