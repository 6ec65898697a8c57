"""A training that diverges stops at the first non-finite loss, says what to try, and writes nothing."""

import os
import subprocess
import sys

import pytest

import kslim
from kslim.cli.common import recipe_for
from kslim.cli.train import train_file

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin", "kslim-train")


def test_kslim_train_stops_at_the_first_nan_loss_and_writes_no_model(tmp_path):
    out = tmp_path / "sparse.keras"
    with pytest.raises(ValueError, match=r"^Training diverged: the loss is nan at epoch \d+, batch \d+, and nothing "
                                         r"was written; lower --lr \(now 1e\+06\) or --lam \(now 0.0001\), and "
                                         r"run again.$"):
        train_file("mlp", out, data="mnist", lr=1e6, lam=1e-4, epochs=3, limit=512, print_fn=None, verbose=0)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_slim_stops_at_the_first_nan_loss_and_records_no_phase_after_it(tmp_path):
    train = kslim.data.load("mnist", batch_size=128, limit=512, seed=0)
    model = kslim.models.get("mlp", widths=[32, 16])
    with pytest.raises(ValueError, match=r"Training diverged: .*lower the recipe's learning rate \(lr=1e\+06\) "
                                         r"or lam \(0.001\)"):
        kslim.slim(model, train, run_dir=tmp_path / "run", lam=1e-3, epochs=2, plots=False, verbose=0,
                   recipe=kslim.recipe.Recipe(lr=1e6, milestones=()))
    assert not (tmp_path / "run" / "pass1" / "sparse.keras").exists()


def test_the_command_exits_non_zero_with_one_line(tmp_path):
    out = tmp_path / "m.keras"
    run = subprocess.run([sys.executable, BIN, "--model", "mlp", "--lr", "1e6", "--limit", "512", "--epochs", "2",
                          "--output", str(out)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert run.returncode == 1 and not out.exists()
    assert run.stderr.strip().splitlines()[-1].startswith("kslim-train: error: Training diverged: the loss is nan")
    assert "Traceback" not in run.stderr


def test_the_lenets_train_at_their_registered_rate():
    # Without BatchNormalization they diverge at the paper's 0.1; the commands use 0.01 unless told.
    assert recipe_for("mnist", model="lenet5").lr == recipe_for("mnist", model="lenet5_caffe").lr == 0.01
    assert recipe_for("mnist", model="lenet5", lr=0.05).lr == 0.05
    assert recipe_for("mnist", model="mlp").lr == recipe_for("mnist").lr == 0.1
