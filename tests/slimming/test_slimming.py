"""`kslim.slim`: multi-pass slimming on real MNIST, its run folder, resuming, and its errors."""

import json
import os
import sys

import keras
import numpy as np
import pytest

import kslim
from kslim.slimming import plots

PHASES = ["initial"] + [f"{p}{k}" for k in (1, 2) for p in ("sparse", "pruned", "finetuned")]


@pytest.fixture(scope="module")
def data():
    train = kslim.data.load("mnist", batch_size=128, limit=2000, seed=0)
    test = kslim.data.load("mnist", "test", batch_size=500, limit=500)
    return train, test


def _model():
    return kslim.models.get("mlp", widths=[32, 16], gamma_init=0.5)


def _args(**changes):
    args = dict(passes=2, ratio=0.5, lam=1e-3, epochs=1, finetune_epochs=1,
                recipe=kslim.recipe.Recipe(lr=0.05, milestones=()), verbose=0)
    args.update(changes)
    return args


class _Count(keras.callbacks.Callback):
    """Counts fits and epochs; raises KeyboardInterrupt at the start of fit number `stop_fit`."""

    def __init__(self, stop_fit=None, stop_epoch=None):
        super().__init__()
        self.fits, self.epochs = 0, 0
        self.stop_fit, self.stop_epoch = stop_fit, stop_epoch

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == self.stop_fit:
            raise KeyboardInterrupt

    def on_epoch_begin(self, epoch, logs=None):
        if self.stop_epoch is not None and epoch == self.stop_epoch:
            raise KeyboardInterrupt
        self.epochs += 1


def _phases(records):
    return [r["phase"] + (str(r["pass"]) if r["pass"] else "") for r in records]


def test_two_passes_write_every_checkpoint_metric_and_plot(data, tmp_path):
    train, test = data
    model = _model()
    weights = [w.copy() for w in model.get_weights()]
    run_dir = tmp_path / "run"
    result = kslim.slim(model, train, test, run_dir=run_dir, **_args())

    assert _phases(result.records) == PHASES
    for k in (1, 2):
        names = sorted(os.listdir(run_dir / f"pass{k}"))
        assert names == sorted([
            "sparse.keras", "plan.json", "pruned.keras", "finetuned.keras", "sparse.csv",
            "finetune.csv", "gammas.npz", "gammas.png", "channels.png",
        ])
    assert sorted(os.listdir(run_dir)) == [
        "accuracy.png", "initial.keras", "metrics.json", "pass1", "pass2", "run.json",
    ]
    for png in ("accuracy.png", "pass1/gammas.png", "pass2/channels.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["records"] == result.records

    by = dict(zip(PHASES, result.records))
    assert by["initial"]["params"] > by["pruned1"]["params"] > by["pruned2"]["params"]
    assert by["finetuned2"]["flops"] < by["finetuned1"]["flops"] < by["initial"]["flops"]
    assert by["sparse1"]["params"] == by["initial"]["params"]
    assert 0 < by["finetuned1"]["pruned_fraction"] < by["finetuned2"]["pruned_fraction"] < 1
    assert all(0 <= r["accuracy"] <= 1 for r in result.records)
    assert by["finetuned2"]["accuracy"] > 0.5  # it learned digits, 2k images, 4 epochs in all
    assert all(by[p]["seconds"] > 0 for p in ("sparse1", "finetuned1", "sparse2", "finetuned2"))
    assert "sparsity" in by["sparse1"] and "threshold" in by["pruned1"]
    with np.load(run_dir / "pass1/gammas.npz") as gammas:
        assert gammas["before"].shape == gammas["after"].shape == (32 + 16,)
        assert np.all(gammas["before"] == 0.5) and not np.allclose(gammas["after"], 0.5)

    # Two passes: the paper's cap of half a layer per pass holds for every layer.
    for k in (1, 2):
        layers = json.loads((run_dir / f"pass{k}/plan.json").read_text())["layers"]
        assert layers, "the plan pruned nothing"
        for name, rec in layers.items():
            before, after = rec["channels"]
            assert before - after <= before // 2, (k, name, rec["channels"])

    # The returned model is the last checkpoint; the input model is untouched.
    x = next(iter(test))[0][:8]
    saved = keras.models.load_model(run_dir / "pass2/finetuned.keras")
    np.testing.assert_allclose(saved(x, training=False), result.model(x, training=False), atol=1e-5)
    assert result.model.count_params() == by["finetuned2"]["params"]
    assert result.model.losses == []  # fine-tuned without the penalty
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert model.losses == []
    assert "params" in str(result) and "test accuracy" in str(result)


def test_an_interrupted_run_resumes_after_its_last_finished_phase(data, tmp_path):
    train, test = data[0], None  # no evaluation: faster
    run_dir = tmp_path / "run"
    stopper = _Count(stop_fit=2)  # the first fit is sparsity training, the second fine-tuning
    with pytest.raises(KeyboardInterrupt):
        kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[stopper], **_args(plots=False))
    first = json.loads((run_dir / "metrics.json").read_text())["records"]
    assert _phases(first) == ["initial", "sparse1", "pruned1"]
    assert (run_dir / "pass1/pruned.keras").exists()
    assert not (run_dir / "pass1/finetuned.keras").exists()
    sparse_mtime = os.path.getmtime(run_dir / "pass1/sparse.keras")

    counter = _Count()
    result = kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[counter], **_args(plots=False))
    assert _phases(result.records) == PHASES
    assert result.records[:3] == first  # finished phases are not redone
    assert counter.fits == 3  # fine-tune 1, sparsity training 2, fine-tune 2
    assert os.path.getmtime(run_dir / "pass1/sparse.keras") == sparse_mtime
    assert result.records[3]["params"] == first[2]["params"]  # fine-tuned the pruned checkpoint

    # A finished run returns its final model without training.
    again = _Count()
    done = kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[again], **_args(plots=False))
    assert again.fits == 0 and done.records == result.records
    assert done.model.count_params() == result.records[-1]["params"]


def test_an_interrupted_epoch_resumes_from_the_last_finished_epoch(data, tmp_path):
    train, test = data[0], None
    run_dir = tmp_path / "run"
    args = _args(passes=1, epochs=2, plots=False)
    with pytest.raises(KeyboardInterrupt):
        kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[_Count(stop_epoch=1)], **args)
    assert (run_dir / "pass1/sparse.backup").is_dir()
    counter = _Count()
    kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[counter], **args)
    assert counter.epochs == 1 + 1  # the second sparsity epoch, then the fine-tuning epoch
    rows = (run_dir / "pass1/sparse.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert not (run_dir / "pass1/sparse.backup").exists()


@pytest.mark.parametrize("damage", ["weights", "metadata"])
def test_a_torn_mid_phase_backup_is_discarded_and_the_phase_redone(data, tmp_path, damage):
    # A process killed while Keras writes its backup leaves a truncated file, which Keras itself
    # would fail on at every later attempt ("truncated file: eof = 96").
    train, test = data[0], None
    run_dir = tmp_path / "run"
    args = _args(passes=1, epochs=2, plots=False)
    with pytest.raises(KeyboardInterrupt):
        kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[_Count(stop_epoch=1)], **args)
    backup = run_dir / "pass1/sparse.backup"
    name = {"weights": "latest.weights.h5", "metadata": "training_metadata.json"}[damage]
    with open(backup / name, "r+b") as f:
        f.truncate(96 if damage == "weights" else 5)
    counter = _Count()
    with pytest.warns(UserWarning, match=rf"sparse\.backup is damaged \({name}.*discarding it and "
                                         r"starting sparsity training of pass 1 again"):
        result = kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[counter], **args)
    assert counter.epochs == 2 + 1  # both sparsity epochs again, then fine-tuning
    assert _phases(result.records) == ["initial", "sparse1", "pruned1", "finetuned1"]
    rows = (run_dir / "pass1/sparse.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]  # the log restarts with the phase


def test_a_damaged_checkpoint_or_metrics_file_is_discarded_and_redone(data, tmp_path):
    train, test = data[0], None
    run_dir = tmp_path / "run"
    args = _args(passes=1, plots=False)
    with pytest.raises(KeyboardInterrupt):
        kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[_Count(stop_fit=2)], **args)
    (run_dir / "pass1/pruned.keras").write_bytes(b"PK\x03\x04 torn")
    counter = _Count()
    with pytest.warns(UserWarning, match=r"pruned\.keras is damaged \(.*\); discarding it and running "
                                         r"pruning of pass 1 again"):
        result = kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[counter], **args)
    assert counter.fits == 1  # only fine-tuning trains: the sparse checkpoint was good
    assert _phases(result.records) == ["initial", "sparse1", "pruned1", "finetuned1"]
    assert keras.saving.load_model(run_dir / "pass1/pruned.keras").count_params() > 0

    (run_dir / "metrics.json").write_text('{"format": "kslim.metrics/1", "rec')
    counter = _Count()
    with pytest.warns(UserWarning, match=r"metrics\.json is damaged .*running every phase again"):
        again = kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[counter], **args)
    assert counter.fits == 2 and _phases(again.records) == ["initial", "sparse1", "pruned1", "finetuned1"]


class _StopAt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt at the start of epoch `epoch` of fit number `fit`."""

    def __init__(self, fit, epoch):
        super().__init__()
        self.fit, self.epoch, self.fits = fit, epoch, 0

    def on_train_begin(self, logs=None):
        self.fits += 1

    def on_epoch_begin(self, epoch, logs=None):
        if self.fits == self.fit and epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("fit,epoch", [(3, 1), (2, 0)])  # mid-epoch of pass 2's sparsity training; at fine-tuning
def test_a_resumed_run_reproduces_the_uninterrupted_one_bit_for_bit(tmp_path, fit, epoch):
    # Issue 14, item 3: killed and resumed, a run chose another plan (fc1 500 -> 69 instead of 71). A new
    # process gets a new dataset, whose seeded shuffling starts again at its first epoch; slim replays the
    # passes the uninterrupted run had drawn. Each call gets a fresh dataset, as a new process would.
    def fresh():
        return kslim.data.load("mnist", batch_size=128, limit=2000, seed=0)

    def model():
        keras.utils.set_random_seed(0)
        return _model()

    args = _args(epochs=2, finetune_epochs=2, plots=False)
    whole = kslim.slim(model(), fresh(), None, run_dir=tmp_path / "whole", **args)
    with pytest.raises(KeyboardInterrupt):
        kslim.slim(model(), fresh(), None, run_dir=tmp_path / "cut", callbacks=[_StopAt(fit, epoch)], **args)
    resumed = kslim.slim(model(), fresh(), None, run_dir=tmp_path / "cut", **args)
    assert [r["channels"] for r in resumed.records] == [r["channels"] for r in whole.records]
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_resuming_with_other_arguments_is_refused(data, tmp_path):
    train, test = data
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        kslim.slim(_model(), train, test, run_dir=run_dir, callbacks=[_Count(stop_fit=1)], **_args())
    with pytest.raises(ValueError, match=r"made with ratio=0\.5, but this call has ratio=0\.6\. "
                                         r"Pass ratio=0\.5 to resume"):
        kslim.slim(_model(), train, test, run_dir=run_dir, **_args(ratio=0.6))
    with pytest.raises(ValueError, match=r"recipe\.lr=0\.05, but this call has recipe\.lr=0\.1"):
        kslim.slim(_model(), train, test, run_dir=run_dir, **_args(recipe=kslim.recipe.Recipe(milestones=())))
    with pytest.raises(ValueError, match=r"model\.params="):
        other = kslim.models.get("mlp", widths=[32, 8], gamma_init=0.5)
        kslim.slim(other, train, test, run_dir=run_dir, **_args())
    with pytest.raises(ValueError, match=r"train_batches=16, but this call has train_batches=8"):
        small = kslim.data.load("mnist", batch_size=128, limit=1000)
        kslim.slim(_model(), small, test, run_dir=run_dir, **_args())
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not a kslim run"):
        kslim.slim(_model(), train, test, run_dir=busy, **_args())
    assert os.listdir(busy) == ["notes.txt"]


def test_in_memory_under_a_mirrored_strategy(mirrored):
    train = kslim.data.load("mnist", batch_size=128, limit=512, seed=0)
    with mirrored.scope():
        model = _model()
    result = kslim.slim(model, train, strategy=mirrored, **_args(passes=1))
    assert _phases(result.records) == PHASES[:4]
    assert all(r["checkpoint"] is None for r in result.records)
    assert result.records[-1]["params"] < result.records[0]["params"]
    assert result.model.count_params() == result.records[-1]["params"]


def test_progress_lines_and_plan_are_printed(data, capsys):
    train, _ = data
    kslim.slim(_model(), train, **_args(passes=1, verbose=2))
    out = capsys.readouterr().out
    assert "pass 1/1: sparsity training ..." in out
    assert "pass 1/1: pruning ..." in out and "fc1_bn" in out and "params:" in out
    assert "pass 1/1: fine-tuning ..." in out


def test_bad_arguments_fail_before_anything_is_written(data, tmp_path):
    train, test = data
    run_dir = tmp_path / "run"
    cases = [
        (dict(passes=0), ValueError, "passes=0 must be an integer >= 1"),
        (dict(ratio=1.0), ValueError, r"ratio=1\.0 must be in \[0, 1\)"),
        (dict(lam=-1.0), ValueError, "lam=-1.0 must be >= 0"),
        (dict(penalty="l3"), ValueError, "Unknown penalty 'l3'"),
        (dict(epochs=0), ValueError, "epochs=0 must be an integer >= 1"),
        (dict(max_layer_ratio=1.5), ValueError, "max_layer_ratio=1.5 must be in"),
        (dict(min_chanels=2), TypeError, r"unknown arguments \['min_chanels'\]"),
        (dict(recipe="paper"), TypeError, "recipe must be a kslim.recipe.Recipe"),
        (dict(callbacks=["csv"]), TypeError, "callbacks must be keras.callbacks.Callback"),
    ]
    for changes, error, message in cases:
        with pytest.raises(error, match=message):
            kslim.slim(_model(), train, test, run_dir=run_dir, **_args(**changes))
    with pytest.raises(ValueError, match="unknown number of batches"):
        kslim.slim(_model(), train.repeat(), run_dir=run_dir, **_args())
    with pytest.raises(ValueError, match="has no trainable channel scaling factor"):
        kslim.slim(kslim.models.get("lenet5"), train, run_dir=run_dir, **_args())
    with pytest.raises(TypeError, match="expects a keras.Model"):
        kslim.slim("mlp", train, run_dir=run_dir, **_args())
    assert not run_dir.exists()


def test_missing_matplotlib_is_named_before_training(data, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'kslim\[plots\]'"):
        plots.check_matplotlib()
    with pytest.raises(ImportError, match="plots=False"):
        kslim.slim(_model(), data[0], run_dir=tmp_path / "run", **_args())
    assert not (tmp_path / "run").exists()


def test_a_masked_model_reports_the_channels_it_keeps(data):
    # Yang et al.'s masks fold away when pruned: the records count what the plan kept, not 0.
    train, test = data
    model = kslim.models.get("mlp", widths=[32, 16], batchnorm=False, channel_masks=True)
    result = kslim.slim(model, train, test, **_args(passes=1, ratio=0.5))
    by_phase = {r["phase"]: r for r in result.records}
    assert by_phase["initial"]["channels"] == 48
    assert by_phase["pruned"]["channels"] == by_phase["finetuned"]["channels"] == 24
    assert by_phase["finetuned"]["pruned_fraction"] == 0.5
    assert "channels 48 -> 24" in str(result)
