"""`ProximalStep`: proximal gradient descent on the channel scaling factors."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kslim import penalties
from kslim.callbacks import ProximalStep


def _model(second_bn=False):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.9, name="bn")(x)
    x = keras.layers.ReLU()(x)
    if second_bn:
        x = keras.layers.Conv2D(5, 3, name="conv2")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name="bn2")(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, name="head")(x)
    return keras.Model(inputs, outputs)


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(32, 8, 8, 3)).astype("float32"), rng.integers(0, 2, size=32)


def _fit(model, callbacks, learning_rate=0.1):
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)


class _Record(keras.callbacks.Callback):
    """Records `gamma` of layer 'bn' at every batch end (where it sits in the callback list)."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(ops.convert_to_numpy(self.model.get_layer("bn").gamma).copy())


@pytest.mark.parametrize("name", ["l1", "lp", "tl1"])
def test_large_lam_gives_exact_zeros(name):
    model = _model()
    _fit(model, [ProximalStep(name, lam=100.0)])
    gamma = ops.convert_to_numpy(model.get_layer("bn").gamma)
    np.testing.assert_array_equal(gamma, np.zeros(6))


@pytest.mark.parametrize("name", ["l1", "smooth_l1", "lp", "tl1", "mcp", "scad"])
def test_lam_zero_leaves_gamma_untouched(name):
    model = _model()
    before, after = _Record(), _Record()
    _fit(model, [before, ProximalStep(name, lam=0.0), after])
    assert len(before.values) == 4
    assert not np.array_equal(before.values[0], np.ones(6))  # SGD did move gamma
    for b, a in zip(before.values, after.values):
        np.testing.assert_array_equal(a, b)


def test_prox_uses_the_learning_rate_of_the_step_taken():
    # 0.1 for the first step (iteration 0), 0.01 afterwards.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([0], [0.1, 0.01])
    penalty = penalties.L1(lam=2.0)
    model = _model()
    before, after = _Record(), _Record()
    _fit(model, [before, ProximalStep(penalty), after], learning_rate=schedule)
    rates = [0.1, 0.01, 0.01, 0.01]
    for b, a, rate in zip(before.values, after.values, rates):
        np.testing.assert_array_equal(a, penalty.prox(b, rate).astype("float32"))
    assert not np.array_equal(after.values[0], penalty.prox(before.values[0], 0.01).astype("float32"))


def test_prox_with_a_float_learning_rate_and_a_named_penalty():
    model = _model()
    before, after = _Record(), _Record()
    _fit(model, [before, ProximalStep("scad", lam=1.0, a=3.7, knee=0.5), after], learning_rate=0.05)
    reference = penalties.SCAD(lam=1.0, a=3.7, knee=0.5)
    for b, a in zip(before.values, after.values):
        np.testing.assert_array_equal(a, reference.prox(b, 0.05).astype("float32"))


def test_exclude_leaves_that_layer_alone():
    model = _model(second_bn=True)
    _fit(model, [ProximalStep("l1", lam=100.0, exclude=["bn2"])])
    np.testing.assert_array_equal(ops.convert_to_numpy(model.get_layer("bn").gamma), np.zeros(6))
    assert np.all(ops.convert_to_numpy(model.get_layer("bn2").gamma) != 0)


def test_raises_when_a_penalty_is_also_in_the_loss():
    model = _model()
    model.get_layer("bn").gamma.regularizer = penalties.L1(1e-4)
    with pytest.raises(ValueError, match=r"already carry a kslim penalty .*\['bn'\].*kslim\.detach\(model\)"):
        _fit(model, [ProximalStep("l1", lam=1e-4)])


def test_raises_without_scaling_factors():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs), name="plain")
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"no trainable scaling factor in model 'plain'"):
        model.fit(np.zeros((4, 4)), np.zeros((4, 2)), verbose=0, callbacks=[ProximalStep()])


def test_bad_penalty_name():
    with pytest.raises(ValueError, match=r"Unknown penalty 'l0'"):
        ProximalStep("l0")


def test_mirrored_strategy_gives_exact_zeros_on_every_replica(mirrored):
    strategy = mirrored
    with strategy.scope():
        model = _model()
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0, callbacks=[ProximalStep("l1", lam=100.0)])
    gamma = model.get_layer("bn").gamma.value
    replicas = strategy.experimental_local_results(gamma)
    assert len(replicas) == 2
    for value in replicas:
        np.testing.assert_array_equal(value.numpy(), np.zeros(6))
