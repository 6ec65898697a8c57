"""`kslim-slim`, `kslim-train`, `kslim-info` and the library functions behind them."""

import inspect
import json
import os
import pathlib
import re
import subprocess
import sys
import types

import keras
import numpy as np
import pytest

import kslim
from kslim.cli import common as _commands
from kslim.cli.info import histogram, info_file
from kslim.cli.slim import slim_run
from kslim.cli.train import train_file

BIN = os.path.join(os.path.dirname(__file__), "..", "..", "bin")


def _run(tool, *args):
    return subprocess.run(
        [sys.executable, os.path.join(BIN, tool), *args], capture_output=True, text=True,
        timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.fixture
def sparse(tmp_path):
    """A small trained-looking BN model on disk, with the L1 penalty and half its gammas near 0."""
    model = kslim.models.get("mlp", widths=[16, 8], gamma_init=0.5)
    bn = model.get_layer("fc1_bn")
    bn.gamma.assign(np.r_[np.full(8, 1e-3), np.full(8, 0.7)].astype("float32"))
    kslim.attach(model, lam=1e-3)
    path = tmp_path / "sparse.keras"
    model.save(path)
    return path


# Subprocesses: one success path per command, and one error.


def test_kslim_slim_runs_the_pipeline_and_prints_the_plan_and_result(tmp_path):
    run_dir = tmp_path / "run"
    result = _run(
        "kslim-slim", "--limit", "500", "--epochs", "1", "--finetune_epochs", "1",
        "--ratio", "0.5", "--lam", "1e-3", "--run_dir", str(run_dir),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pass 1/1: sparsity training ..." in out
    assert re.search(r"fc1_bn\s+BatchNormalization\s+500 -> \d+", out)
    last = [line for line in out.splitlines() if line.startswith("mlp slimmed in 1 pass")]
    assert last and re.search(r"params [\d.]+K -> [\d.]+K", last[0]) and "test accuracy" in last[0]
    records = json.loads((run_dir / "metrics.json").read_text())["records"]
    assert [r["phase"] for r in records] == ["initial", "sparse", "pruned", "finetuned"]
    assert records[-1]["params"] < records[0]["params"]
    for name in ("pass1/finetuned.keras", "pass1/plan.json", "pass1/sparse.csv", "accuracy.png",
                 "pass1/gammas.png", "pass1/channels.png"):
        assert (run_dir / name).exists(), name


def test_kslim_train_sparsity_trains_under_a_mirrored_strategy(tmp_path):
    out = tmp_path / "sparse.keras"
    result = _run(
        "kslim-train", "--model", "mlp", "--lam", "1e-3", "--epochs", "1", "--limit", "512",
        "--strategy", "mirrored", "--output", str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "sparsity training (lam=0.001, l1) of 'mlp'" in result.stdout
    assert re.search(r"test accuracy: \d+\.\d\d%", result.stdout)
    assert "sparsity:" in result.stdout  # SparsityMonitor's logs on the progress bar
    model = keras.models.load_model(out)  # safe mode
    assert len(model.losses) == 0  # saved without its penalty: plain Keras loads it (kslim.attach puts it back)


def test_kslim_info_prints_profile_histogram_and_plan(sparse):
    result = _run("kslim-info", "--model", str(sparse), "--ratio", "0.25")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Profile of 'mlp'" in out and "FLOPs" in out
    assert "|gamma| of 24 channels in 2 layers: 10 bins" in out
    assert "8 of 24 (33.3%) below 0.01" in out
    assert "Pruning plan at ratio=0.25" in out and "fc1_bn" in out and "16 -> 10" in out


def test_kslim_slim_error_is_one_line_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    result = _run("kslim-slim", "--limit", "0", "--run_dir", str(run_dir))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["kslim-slim: error: flag --limit=0: must be an integer >= 1."]
    assert not run_dir.exists()


# The library functions, in-process.


def test_train_file_fine_tunes_without_the_penalty_and_trains_files_from_scratch(sparse, tmp_path):
    out = tmp_path / "finetuned.keras"
    model, accuracy = train_file(init=sparse, output=out, epochs=1, limit=256, verbose=0, print_fn=None)
    assert model.losses == [] and 0 <= accuracy <= 1
    saved = keras.models.load_model(out)
    assert saved.losses == []
    start = keras.models.load_model(sparse)
    gamma = saved.get_layer("fc1_bn").gamma.numpy()
    assert not np.allclose(gamma, start.get_layer("fc1_bn").gamma.numpy())  # trained from it...
    assert np.sum(np.abs(gamma) < 0.1) >= 6  # ...keeping its near-zero gammas near zero

    scratch, _ = train_file(sparse, tmp_path / "scratch.keras", epochs=1, limit=256, lr=1e-9,
                            verbose=0, print_fn=None)
    # New weights: BN gamma back at its initial value (the lr is too small to move it).
    np.testing.assert_allclose(scratch.get_layer("fc1_bn").gamma.numpy(), 0.5, atol=1e-6)


def test_train_file_errors_name_the_fix_and_write_nothing(sparse, tmp_path):
    out = tmp_path / "out.keras"
    cases = [
        (dict(model="mlp", init=sparse, output=out), ValueError, "not both"),
        (dict(output=out), ValueError, "Give --model"),
        (dict(model="mlp", output=tmp_path / "out.h5"), ValueError, "must end in .keras"),
        (dict(init=sparse, output=sparse, overwrite=True), ValueError, "is an input file"),
        (dict(model="mlp", output=out, lam=-1.0), ValueError, "lam=-1.0 must be >= 0"),
        (dict(model="mlp", output=out, penalty="l3"), ValueError, "Unknown penalty 'l3'"),
        (dict(model="mlp", output=out, epochs=0), ValueError, "epochs=0 must be an integer >= 1"),
        (dict(model="mlp", output=out, strategy="tpu"), ValueError, "strategy='tpu' is not one of"),
        (dict(model="mlp", output=out, data=str(tmp_path / "nope.npz")), FileNotFoundError, "nope.npz"),
        (dict(model="resnet33", output=out), ValueError, "zoo models are densenet40, lenet5"),
        (dict(init=tmp_path / "missing.keras", output=out), FileNotFoundError, "missing.keras"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            train_file(print_fn=None, verbose=0, **kwargs)
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        train_file("mlp", out, print_fn=None)
    assert out.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["out.keras", "sparse.keras"]


def test_slim_run_errors_and_resume_refusal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="limit=0 must be an integer >= 1"):
        slim_run(limit=0)
    with pytest.raises(ValueError, match=r"ratio=1\.5 must be in \[0, 1\)"):
        slim_run(ratio=1.5, limit=64)
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        slim_run("missing.keras", limit=64)
    with pytest.raises(ValueError, match="model='vgg20' is neither a .keras file nor a zoo model"):
        slim_run("vgg20", limit=64)
    assert os.listdir(tmp_path) == []  # nothing written, not even runs/
    run_dir = tmp_path / "runs" / "slim-mlp-mnist"  # the default run_dir
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"format": "kslim.run/1", "arguments": {"ratio": 0.3}}))
    with pytest.raises(ValueError, match=r"made with ratio=0\.3, but this call has ratio=0\.8"):
        slim_run(limit=64, verbose=0)


def test_info_file_errors_and_histogram(sparse, tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        info_file(tmp_path / "missing.keras", print_fn=None)
    junk = tmp_path / "junk.keras"
    junk.write_text("no")
    with pytest.raises(ValueError, match="junk.keras is not a Keras model file"):
        info_file(junk, print_fn=None)
    with pytest.raises(ValueError, match=r"ratio=1\.5 must be in \[0, 1\)"):
        info_file(sparse, ratio=1.5, print_fn=None)
    text = histogram(np.array([0.0, 0.001, 0.3, 0.6]), bins=2, title="t")
    assert text.splitlines() == [
        "t: 2 bins",
        "  [  0.0000,   0.3000)        2  " + "#" * 40,
        "  [  0.3000,   0.6000]        2  " + "#" * 40,
        "  2 of 4 (50.0%) below 0.01",
    ]
    no_bn = tmp_path / "lenet.keras"
    kslim.models.get("lenet5").save(no_bn)
    assert "No channel scaling factors" in info_file(no_bn, print_fn=None)


def test_slim_flags_default_to_the_library_defaults():
    """`kslim-slim` with no flags must run exactly `slim_run()`, the README's job."""
    text = open(os.path.join(BIN, "kslim-slim")).read()
    defaults = inspect.signature(slim_run).parameters
    flags = re.findall(r'flags\.DEFINE_\w+\("(\w+)", ([^,]+),', text)
    assert len(flags) == 15
    for name, value in flags:
        assert eval(value) == defaults[name].default, name  # noqa: S307 (literal defaults)


def test_only_the_chief_worker_writes_to_run_dir():
    def strategy(task_type, task_id, cluster):
        spec = types.SimpleNamespace(as_dict=lambda: cluster)
        resolver = types.SimpleNamespace(task_type=task_type, task_id=task_id, cluster_spec=lambda: spec)
        return types.SimpleNamespace(cluster_resolver=resolver)

    assert _commands.worker_suffix(None) == ""
    assert _commands.worker_suffix(strategy(None, None, {})) == ""
    assert _commands.worker_suffix(strategy("worker", 0, {"worker": ["a", "b"]})) == ""
    assert _commands.worker_suffix(strategy("worker", 1, {"worker": ["a", "b"]})) == "-worker1"
    assert _commands.worker_suffix(strategy("worker", 0, {"chief": ["c"], "worker": ["a"]})) == "-worker0"


@pytest.mark.parametrize("name", ["vgg11", "resnet32", "mlp"])
def test_command_line_zoo_models_start_with_the_papers_gamma(name):
    from kslim.cli.common import build_model

    model = build_model(name, {"num_classes": 10, "image_shape": (28, 28, 1) if name == "mlp" else (32, 32, 3)})
    gammas = np.concatenate([np.asarray(v) for _, v in kslim.scaling_factors(model)])
    assert np.all(gammas == 0.5), name


def test_train_file_checks_its_output_folder_before_training(tmp_path):
    import time

    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"the folder .*missing does not exist"):
        train_file(model="mlp", data="mnist", output=tmp_path / "missing" / "out.keras", epochs=1)
    assert time.perf_counter() - start < 5  # refused before any data is read or any epoch runs
    assert os.listdir(tmp_path) == []


def test_the_recipe_follows_the_data_not_how_it_is_named():
    from kslim.cli.common import dataset_kind, recipe_for

    SHARED = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data"
    mnist = recipe_for("mnist")
    for data in ("mnist", os.fspath(SHARED / "mnist.npz")):
        assert dataset_kind(data) == "mnist"
        assert recipe_for(data).epochs == mnist.epochs and recipe_for(data).batch_size == mnist.batch_size
    assert dataset_kind(os.fspath(SHARED / "cifar10-jpeg.tar.gz")) == "cifar10"
    assert recipe_for(os.fspath(SHARED / "cifar10-jpeg.tar.gz")).epochs == 160


def test_two_workers_on_loopback_are_refused_clearly_before_training(tmp_path):
    # Issue 14, item 16. Keras 3's fit fails at its first step under MultiWorkerMirroredStrategy with two
    # workers (tried here: "Attempt to convert a value (PerReplica...)"), so the commands refuse such a
    # cluster at once, on every worker, and write nothing.
    import socket

    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, os.path.join(BIN, "kslim-train"), "--model", "mlp", "--limit", "256", "--epochs",
             "1", "--strategy", "multiworker", "--output", str(tmp_path / "out.keras")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 1
        assert err.strip().splitlines()[-1].startswith(
            "kslim-train: error: --strategy=multiworker with 2 workers in $TF_CONFIG: Keras 3's Model.fit")
    assert os.listdir(tmp_path) == []


def test_a_one_worker_cluster_and_no_cluster_are_accepted():
    _commands.check_single_worker({})
    _commands.check_single_worker({"TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:1"]}})})
    with pytest.raises(ValueError, match=r"\$TF_CONFIG is not a JSON object"):
        _commands.check_single_worker({"TF_CONFIG": "{cluster"})
