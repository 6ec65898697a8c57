"""Outputs are checked by name before any work, and every error names the user's path, never kslim's
hidden temporary file; a file that is not a .keras zip is said to be one, not 'File not found'."""

import os
import subprocess
import sys

import keras
import pytest

from kslim._internal import files
from kslim.cli.export import export_file
from kslim.cli.prune import prune_file
from kslim.cli.train import train_file
from kslim.pruning.budget import Budget

LONG = "x" * 300


def _model(tmp_path):
    path = tmp_path / "m.keras"
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    model.save(path)
    return path


def test_write_all_atomic_checks_every_name_before_any_write(tmp_path):
    calls = []
    with pytest.raises(ValueError, match=rf"Cannot write the output {tmp_path / LONG}\.json: its file name is "
                                         r"305 bytes, longer than the 255 bytes"):
        files.write_all_atomic([(tmp_path / "m.keras", calls.append), (tmp_path / f"{LONG}.json", calls.append)])
    assert calls == [] and os.listdir(tmp_path) == []


def test_an_error_of_the_write_names_the_users_path_not_the_temporary(tmp_path):
    def fails(path):
        raise ValueError(f"Keras cannot write '{path}': bad layer")

    def denied(path):
        open(os.path.join(path, "inside"), "w")  # a file inside a file: an OSError naming the temporary

    target = tmp_path / "model.keras"
    with pytest.raises(ValueError) as caught:
        files.write_atomic(target, fails)
    assert str(caught.value) == f"Cannot write {target}: Keras cannot write '{target}': bad layer"
    with pytest.raises(OSError) as caught:
        files.write_atomic(target, denied)
    assert ".kslim-" not in str(caught.value) and str(target) in str(caught.value), caught.value
    assert os.listdir(tmp_path) == []


def test_an_over_long_output_or_plan_name_is_refused_before_any_work(tmp_path):
    model = _model(tmp_path)
    with pytest.raises(ValueError, match="its file name is 305 bytes"):
        prune_file(model, tmp_path / "o.keras", Budget(ratio=0.5), save_plan=tmp_path / f"{LONG}.plan",
                   print_fn=None)
    with pytest.raises(ValueError, match="its file name is 306 bytes"):
        train_file("mlp", tmp_path / f"{LONG}.keras", data="no-such-data-is-ever-read", print_fn=None)
    with pytest.raises(ValueError, match="its file name is 300 bytes"):
        export_file(model, tmp_path / LONG, format="saved_model")
    assert os.listdir(tmp_path) == ["m.keras"]


@pytest.mark.parametrize("content", ["corrupt", "sparse"])
def test_a_corrupt_or_sparse_keras_file_is_not_a_keras_file_not_file_not_found(tmp_path, content):
    path = tmp_path / "bad.keras"
    with open(path, "wb") as f:
        if content == "corrupt":
            f.write(os.urandom(4096))
        else:
            f.truncate(64 << 20)  # a 64 MiB hole: no disk used
    with pytest.raises(ValueError) as caught:
        files.load_model(path)
    message = str(caught.value)
    assert message.startswith(f"{path} is not a Keras model file: a .keras file is a zip archive, and this one is not")
    assert "not found" not in message.lower()


def test_kslim_export_to_an_over_long_saved_model_folder_is_one_line(tmp_path):
    model = _model(tmp_path)
    result = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "..", "..", "bin", "kslim-export"),
                             "--model", str(model), "--output", str(tmp_path / LONG), "--format", "saved_model"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"kslim-export: error: --output={tmp_path / LONG}: the file name is 300 bytes, longer than the 255 bytes "
        f"the file system of {tmp_path} allows; choose a shorter name."
    ]
