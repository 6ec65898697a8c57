"""`kslim-prune` and the library function behind it: success, atomic output, clear errors."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import kslim
from kslim.cli.prune import prune_file

from kslim.testing import archs
from kslim.testing.exactness import sparsify

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin", "kslim-prune")
_NO_LOG_LEVEL = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


@pytest.fixture
def trained(tmp_path):
    path = tmp_path / "trained.keras"
    sparsify(archs.vgg()).save(path)
    return path


def _run(*args):
    return subprocess.run(
        [sys.executable, BIN, *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def test_cli_prunes_prints_the_plan_and_writes_the_model(trained, tmp_path):
    out, plan_path = tmp_path / "slim.keras", tmp_path / "plan.json"
    result = _run("--model", str(trained), "--ratio", "0.3", "--output", str(out), "--save_plan", str(plan_path))
    assert result.returncode == 0, result.stderr
    assert "block1_conv" in result.stdout and "params:" in result.stdout and "FLOPs:" in result.stdout
    slim = keras.models.load_model(out)  # safe mode on
    model = keras.models.load_model(trained)
    assert slim.count_params() < model.count_params()
    assert json.loads(plan_path.read_text())["format"] == "kslim.plan/1"
    assert sorted(os.listdir(tmp_path)) == ["plan.json", "slim.keras", "trained.keras"]


def test_cli_error_is_one_line_with_no_output(trained, tmp_path):
    out = tmp_path / "slim.keras"
    result = _run("--model", str(trained), "--ratio", "1.5", "--output", str(out))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "kslim-prune: error: flag --ratio=1.5: must be in [0, 1): the fraction of channels to prune "
        "(0.7 prunes 70%)."
    ]
    assert not out.exists()


@pytest.mark.parametrize("command,flag", [
    ("kslim-prune", "--min_channels=0"), ("kslim-info", "--ratio=1"), ("kslim-slim", "--lam=-1"),
    ("kslim-train", "--epochs=0"), ("kslim-export", "--limit=0"),
])
def test_bad_flag_values_fail_in_one_line_before_tensorflow_loads(command, flag):
    path = os.path.join(os.path.dirname(BIN), command)
    start = time.monotonic()
    output = ["--output", "o"] if command in ("kslim-prune", "kslim-train", "kslim-export") else []
    result = subprocess.run([sys.executable, path, "--model", "m.keras", *output, flag],
                            capture_output=True, text=True, timeout=60, env=_NO_LOG_LEVEL)
    assert time.monotonic() - start < 3  # importing TensorFlow alone takes ~5 s here
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    name = flag.split("=")[0]
    assert lines[0].startswith(f"{command}: error: flag {name}=") and ": must be" in lines[0]


def test_tensorflow_start_up_lines_are_dropped_but_real_messages_kept(trained, tmp_path):
    # TensorFlow 2.21's C++ start-up lines ignore TF_CPP_MIN_LOG_LEVEL; the commands filter them.
    out = tmp_path / "slim.keras"
    result = subprocess.run([sys.executable, BIN, "--model", str(trained), "--ratio", "0.3", "--output",
                             str(out)], capture_output=True, text=True, timeout=300, env=_NO_LOG_LEVEL)
    assert result.returncode == 0, result.stderr
    for noise in ("oneDNN", "cuda", "absl::InitializeLog", "cpu_feature_guard", "To enable the following"):
        assert noise not in result.stderr
    missing = subprocess.run([sys.executable, BIN, "--model", str(tmp_path / "nope.keras"), "--ratio", "0.3",
                              "--output", str(out), "--overwrite"], capture_output=True, text=True,
                             timeout=300, env=_NO_LOG_LEVEL)
    assert missing.stderr.strip().splitlines() == [
        f"kslim-prune: error: flag --model={tmp_path / 'nope.keras'}: no such file; check the path."
    ]
    shown = subprocess.run([sys.executable, BIN, "--model", str(trained), "--ratio", "0.3",
                            "--output", str(tmp_path / "b.keras"), "--verbosity", "0"], capture_output=True, text=True,
                           timeout=300, env=_NO_LOG_LEVEL)
    assert "oneDNN" in shown.stderr  # --verbosity shows everything again


def test_applying_a_saved_plan_gives_the_same_model(trained, tmp_path):
    plan, first = prune_file(trained, tmp_path / "a.keras", budget=kslim.Budget(ratio=0.3), save_plan=tmp_path / "p.json", print_fn=None)
    _, again = prune_file(trained, tmp_path / "b.keras", plan=str(tmp_path / "p.json"), print_fn=None)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(first(x, training=False), again(x, training=False), atol=1e-6)


def test_errors_name_the_file_and_leave_nothing(trained, tmp_path):
    out = tmp_path / "slim.keras"
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        prune_file(tmp_path / "missing.keras", out, budget=kslim.Budget(ratio=0.5), print_fn=None)
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match="junk.keras is not a Keras model file"):
        prune_file(junk, out, budget=kslim.Budget(ratio=0.5), print_fn=None)
    with pytest.raises(ValueError, match="is an input file"):
        prune_file(trained, trained, budget=kslim.Budget(ratio=0.5), print_fn=None, overwrite=True)
    with pytest.raises(ValueError, match="must end in .keras"):
        prune_file(trained, tmp_path / "slim.h5", budget=kslim.Budget(ratio=0.5), print_fn=None)
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        prune_file(trained, out, budget=kslim.Budget(ratio=0.5), print_fn=None)
    assert out.read_text() == "keep me"
    out.unlink()
    assert sorted(os.listdir(tmp_path)) == ["junk.keras", "trained.keras"]


@keras.saving.register_keras_serializable(package="kslim_tests")
class _Subclassed(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.conv = keras.layers.Conv2D(4, 3)
        self.bn = keras.layers.BatchNormalization()

    def call(self, x):
        return self.bn(self.conv(x))


def test_a_subclassed_model_file_is_refused(tmp_path):
    model = _Subclassed()
    model(np.zeros((1, 8, 8, 3), "float32"))
    path = tmp_path / "sub.keras"
    model.save(path)
    with pytest.raises(ValueError, match="subclassed model"):
        prune_file(path, tmp_path / "out.keras", budget=kslim.Budget(ratio=0.5), print_fn=None)
    assert not (tmp_path / "out.keras").exists()


def test_overwrite_never_replaces_the_input_through_a_symlinked_folder(trained, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    before = open(trained, "rb").read()
    with pytest.raises(ValueError, match="is an input file"):
        prune_file(trained, link / os.path.basename(trained), budget=kslim.Budget(ratio=0.5),
                   overwrite=True, print_fn=None)
    os.link(trained, tmp_path / "hard.keras")
    with pytest.raises(ValueError, match="is an input file"):
        prune_file(trained, tmp_path / "hard.keras", budget=kslim.Budget(ratio=0.5),
                   overwrite=True, print_fn=None)
    assert open(trained, "rb").read() == before


@pytest.mark.parametrize("command", ["kslim-prune", "kslim-train", "kslim-slim", "kslim-info", "kslim-export"])
def test_help_prints_the_usage_and_exits_0(command):
    path = os.path.join(os.path.dirname(BIN), command)
    result = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-500:]
    assert "Usage:" in result.stdout and "--model" in result.stdout


def test_a_failed_plan_write_leaves_no_model_behind(trained, tmp_path):
    out = tmp_path / "slim.keras"
    with pytest.raises(FileNotFoundError, match="missing"):
        prune_file(trained, out, budget=kslim.Budget(ratio=0.5),
                   save_plan=tmp_path / "missing" / "plan.json", print_fn=None)
    assert sorted(os.listdir(tmp_path)) == ["trained.keras"]


def test_a_broken_plan_file_is_a_one_line_error_naming_it(trained, tmp_path):
    good = tmp_path / "good.json"
    prune_file(trained, tmp_path / "a.keras", budget=kslim.Budget(ratio=0.3), save_plan=good, print_fn=None)
    data = json.loads(good.read_text())
    no_layers = tmp_path / "no_layers.json"
    no_layers.write_text(json.dumps({k: v for k, v in data.items() if k != "layers"}))
    with pytest.raises(ValueError, match=r"no_layers.json: Not a complete kslim plan: it has no 'layers'"):
        prune_file(trained, tmp_path / "b.keras", plan=str(no_layers), print_fn=None)
    name = next(n for n, rec in data["layers"].items() if rec.get("zeroed"))
    data["layers"][name]["zeroed"][0] = 10_000
    bad_index = tmp_path / "bad_index.json"
    bad_index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"bad_index.json: The plan prunes channel 10000 of layer '{name}'"):
        prune_file(trained, tmp_path / "c.keras", plan=str(bad_index), print_fn=None)
    assert not (tmp_path / "b.keras").exists() and not (tmp_path / "c.keras").exists()
