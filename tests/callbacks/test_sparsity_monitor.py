"""Tests of kslim.callbacks.SparsityMonitor and the global threshold it reports."""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf

import kslim

KEYS = ["sparsity", "penalty", "mean_abs_gamma", "ratio_threshold"]
GAMMAS = {
    "bn1": [0.0, 0.05, -0.5, 1.0],
    "bn2": [0.2, -0.01, 0.3, 0.0, -2.0, 0.09, 0.4, 0.6],
}
POOLED = np.abs(np.concatenate(list(GAMMAS.values())))


def _conv_net(name="net"):
    layers = [keras.Input((6, 6, 1))]
    for i, width in enumerate((4, 8), start=1):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", name=f"conv{i}"),
            keras.layers.BatchNormalization(name=f"bn{i}"),
            keras.layers.ReLU(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    return keras.Sequential(layers, name=name)


def _set_gammas(model):
    for name, values in GAMMAS.items():
        model.get_layer(name).gamma.assign(np.array(values, "float32"))


def _compile_frozen(model):
    # lr=0 keeps gamma at the values set, so the logged numbers are known exactly.
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(True))


def _data(n=16):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 6, 6, 1)).astype("float32"), rng.integers(0, 2, size=n)


def _fit(model, callbacks, epochs=2, verbose=0):
    x, y = _data()
    return model.fit(x, y, batch_size=len(x), epochs=epochs, callbacks=callbacks, verbose=verbose)


# SparsityMonitor


def test_logs_have_the_exact_statistics_every_epoch():
    model = _conv_net()
    kslim.attach(model, lam=1e-2)
    _set_gammas(model)
    _compile_frozen(model)
    history = _fit(model, [kslim.callbacks.SparsityMonitor(threshold=0.1, ratio=0.25)])
    expected = {
        "sparsity": np.mean(POOLED < 0.1),  # 0, 0.05, -0.01, 0, 0.09 -> 5 of 12
        "penalty": 1e-2 * POOLED.sum(),
        "mean_abs_gamma": POOLED.mean(),
        "ratio_threshold": np.sort(POOLED)[3],  # round(0.25 * 12) = 3 channels below
    }
    for key, value in expected.items():
        assert len(history.history[key]) == 2, key
        for logged in history.history[key]:
            assert type(logged) is float, key
            np.testing.assert_allclose(logged, value, rtol=1e-6, err_msg=key)
    assert history.history["sparsity"][0] == 5 / 12


def test_penalty_is_zero_without_attach():
    model = _conv_net()
    _set_gammas(model)
    _compile_frozen(model)
    history = _fit(model, [kslim.callbacks.SparsityMonitor(ratio=0.0)], epochs=1)
    assert history.history["penalty"] == [0.0]
    assert history.history["ratio_threshold"] == [0.0]  # nothing is below the smallest factor


def test_csv_logger_records_the_keys(tmp_path):
    model = _conv_net()
    _compile_frozen(model)
    path = tmp_path / "log.csv"
    _fit(model, [kslim.callbacks.SparsityMonitor(), keras.callbacks.CSVLogger(str(path))])
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert set(KEYS) <= set(rows[0])
    assert float(rows[1]["mean_abs_gamma"]) == 1.0  # gamma starts at ones and lr=0


def test_log_dir_writes_histograms_per_layer(tmp_path):
    model = _conv_net()
    _set_gammas(model)
    _compile_frozen(model)
    monitor = kslim.callbacks.SparsityMonitor(log_dir=tmp_path / "logs")
    _fit(model, [monitor])
    assert monitor._writer is None  # closed at the end of training
    files = list((tmp_path / "logs").glob("events.out.tfevents.*"))
    assert len(files) == 1
    steps, counts = {}, {}
    for event in tf.compat.v1.train.summary_iterator(str(files[0])):
        for value in event.summary.value:
            assert value.metadata.plugin_data.plugin_name == "histograms", value.tag
            steps.setdefault(value.tag, []).append(event.step)
            table = tf.make_ndarray(value.tensor)  # rows of (left edge, right edge, count)
            counts[value.tag] = table[:, 2].sum()
    assert steps == {"abs_gamma/bn1": [0, 1], "abs_gamma/bn2": [0, 1]}
    assert counts == {"abs_gamma/bn1": 4, "abs_gamma/bn2": 8}


def test_verbose_prints_one_line_per_epoch_and_silent_otherwise(capsys):
    model = _conv_net()
    _compile_frozen(model)
    _fit(model, [kslim.callbacks.SparsityMonitor()])
    assert capsys.readouterr().out == ""
    _fit(model, [kslim.callbacks.SparsityMonitor(verbose=1)], epochs=3)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("Epoch 3: sparsity=0.0000 (|gamma| < 0.01), penalty=0,")


def test_model_without_scaling_factors_is_an_error():
    model = keras.Sequential(
        [keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(2)], name="plain"
    )
    _compile_frozen(model)
    with pytest.raises(ValueError, match=r"model 'plain' has no trainable channel scaling factor"):
        _fit(model, [kslim.callbacks.SparsityMonitor()])


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"SparsityMonitor: threshold=0.0 must be in \(0, inf\)"):
        kslim.callbacks.SparsityMonitor(threshold=0)
    for ratio in (1.5, 1.0, -0.1):
        with pytest.raises(ValueError, match=rf"SparsityMonitor: ratio={ratio} must be in \[0, 1\)"):
            kslim.callbacks.SparsityMonitor(ratio=ratio)
    with pytest.raises(TypeError, match=r"ratio must be a number, got str '0.5'"):
        kslim.callbacks.SparsityMonitor(ratio="0.5")
    with pytest.raises(ValueError, match=r"verbose=2;"):
        kslim.callbacks.SparsityMonitor(verbose=2)


def test_mirrored_strategy_on_two_cpus(mirrored):
    strategy = mirrored
    assert strategy.num_replicas_in_sync == 2
    with strategy.scope():
        model = _conv_net()
        _compile_frozen(model)
        kslim.attach(model, lam=0.1)
        _set_gammas(model)
    with_penalty = _fit(model, [kslim.callbacks.SparsityMonitor()], epochs=1)
    kslim.detach(model)
    without = _fit(model, [], epochs=1)
    np.testing.assert_allclose(
        with_penalty.history["loss"][0] - without.history["loss"][0], 0.1 * POOLED.sum(), rtol=1e-4
    )
    np.testing.assert_allclose(with_penalty.history["penalty"], [0.1 * POOLED.sum()], rtol=1e-6)
    assert with_penalty.history["sparsity"] == [np.mean(POOLED < 1e-2)]
