"""kslim.recipe: the paper's schedule, its presets, and coupled (PyTorch-style) weight decay."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import kslim
from kslim.training.recipe import CoupledSGD, Recipe


def _lr_at(schedule, step):
    return float(schedule(step)) if callable(schedule) else float(schedule)


def test_defaults_are_the_papers_cifar_settings():
    recipe = Recipe()
    assert recipe == kslim.recipe.paper("cifar10") == kslim.recipe.paper("cifar100")
    assert (recipe.epochs, recipe.batch_size, recipe.lr) == (160, 64, 0.1)
    assert (recipe.momentum, recipe.nesterov) == (0.9, True)
    assert (recipe.weight_decay, recipe.milestones, recipe.decay_rate) == (1e-4, (0.5, 0.75), 0.1)


def test_schedule_drops_by_ten_after_half_and_three_quarters_of_the_steps():
    schedule = Recipe().learning_rate(steps_per_epoch=10)  # 1600 steps
    expected = {0: 0.1, 799: 0.1, 800: 0.01, 1199: 0.01, 1200: 0.001, 1599: 0.001}
    for step, lr in expected.items():
        assert _lr_at(schedule, step) == pytest.approx(lr), f"step {step}"
    # The optimizer reads the schedule at its own step count, starting from 0.
    optimizer = Recipe().optimizer(steps_per_epoch=10)
    optimizer.build([keras.Variable(1.0)])
    for step, lr in expected.items():
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(lr), f"step {step}"


def test_overrides_and_presets():
    recipe = Recipe(epochs=4, lr=0.05, milestones=(0.25,), decay_rate=0.5)
    schedule = recipe.learning_rate(steps_per_epoch=3)  # 12 steps, one drop after 3
    assert [_lr_at(schedule, s) for s in (0, 2, 3, 11)] == pytest.approx([0.05, 0.05, 0.025, 0.025])
    assert _lr_at(Recipe(milestones=()).learning_rate(7), 10**6) == 0.1

    svhn = kslim.recipe.paper("svhn")
    assert svhn == kslim.recipe.paper("svhn_cropped") == Recipe(epochs=20)
    mnist = kslim.recipe.paper("mnist")
    assert (mnist.epochs, mnist.batch_size) == (30, 256)
    schedule = mnist.learning_rate(steps_per_epoch=2)  # 60 steps: drops after 20 and 40
    assert [_lr_at(schedule, s) for s in (19, 20, 39, 40)] == pytest.approx([0.1, 0.01, 0.01, 0.001])
    assert kslim.recipe.paper("imagenet").epochs == 60
    with pytest.raises(ValueError, match=r"No paper recipe for dataset 'cifar-10'; use one of \['cifar10'"):
        kslim.recipe.paper("cifar-10")


def test_config_round_trip_and_replace():
    recipe = Recipe(epochs=12, batch_size=32, lr=0.02, momentum=0.5, nesterov=False, weight_decay=0.0)
    config = json.loads(json.dumps(recipe.get_config()))  # plain JSON
    assert Recipe.from_config(config) == recipe
    assert Recipe.from_config({"epochs": 3}) == Recipe(epochs=3)
    changed = recipe.replace(epochs=40, milestones=[0.3])
    assert changed.epochs == 40 and changed.milestones == (0.3,) and changed.lr == 0.02
    assert recipe.epochs == 12  # the original is unchanged
    assert "Recipe(epochs=12, batch_size=32" in repr(recipe)
    with pytest.raises(TypeError, match=r"Recipe has no field \['gamma'\]; the fields are"):
        recipe.replace(gamma=0.5)
    with pytest.raises(TypeError, match=r"unknown keys \['lr_decay'\]"):
        Recipe.from_config({"lr_decay": 0.1})


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"epochs": 0}, ValueError, "epochs must be >= 1, got 0"),
        ({"epochs": 1.5}, TypeError, "epochs must be a positive int, got 1.5"),
        ({"batch_size": True}, TypeError, "batch_size must be a positive int"),
        ({"lr": 0}, ValueError, "lr must be > 0, got 0"),
        ({"lr": "fast"}, TypeError, "lr must be a number, got 'fast'"),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\)"),
        ({"momentum": 0.0}, ValueError, "nesterov=True needs momentum > 0"),
        ({"weight_decay": -1e-4}, ValueError, "weight_decay must be >= 0"),
        ({"milestones": (0.75, 0.5)}, ValueError, r"must be increasing fractions .* got \(0.75, 0.5\)"),
        ({"milestones": (0.0, 0.5)}, ValueError, r"in \(0, 1\]"),
        ({"milestones": (0.5, 1.5)}, ValueError, r"in \(0, 1\]"),
        ({"milestones": 0.5}, TypeError, "milestones must be a sequence"),
        ({"decay_rate": 0}, ValueError, r"decay_rate must be in \(0, 1\]"),
        ({"schedule": "linear"}, ValueError, r"schedule must be one of \('step', 'cosine'\), got 'linear'"),
        ({"epochs": 3, "warmup_epochs": 3}, ValueError, "warmup_epochs must be >= 0 and below epochs=3, got 3"),
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs must be >= 0"),
    ],
)
def test_invalid_values_are_rejected_with_the_value(kwargs, error, message):
    with pytest.raises(error, match=message):
        Recipe(**kwargs)


def test_steps_per_epoch_must_be_a_positive_count():
    with pytest.raises(ValueError, match="steps_per_epoch must be >= 1, got -2 .*cardinality"):
        Recipe().optimizer(steps_per_epoch=-2)
    assert Recipe().optimizer(np.int64(5)).weight_decay == 1e-4


def _torch_sgd(w, grad_fn, lrs, momentum, weight_decay, nesterov):
    """torch.optim.SGD (dampening 0), the optimizer of the paper's PyTorch code, in NumPy."""
    buf = None
    for lr in lrs:
        d = grad_fn(w) + weight_decay * w
        buf = d if buf is None else momentum * buf + d
        w = w - lr * (d + momentum * buf if nesterov else buf)
    return w


@pytest.mark.parametrize("nesterov", [True, False])
def test_coupled_weight_decay_matches_pytorch_sgd(nesterov):
    a, c = np.array([0.5, 2.0, 1.0]), np.array([0.3, -0.2, 0.0])
    w0 = np.array([1.0, -2.0, 0.5])
    # The learning rate drops after two steps, where Keras's and PyTorch's momentum differ.
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay([1], [0.1, 0.01])
    optimizer = CoupledSGD(schedule, momentum=0.9, nesterov=nesterov, weight_decay=0.05)
    w = keras.Variable(w0.astype("float32"))
    for _ in range(5):  # the gradient of sum(a w^2 / 2 + c w)
        optimizer.apply_gradients([(tf.constant(a * w.numpy() + c, tf.float32), w)])
    expected = _torch_sgd(w0, lambda v: a * v + c, [0.1, 0.1, 0.01, 0.01, 0.01], 0.9, 0.05, nesterov)
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_coupled_decay_is_l2_on_the_gradient_not_keras_decoupled_decay():
    # One plain step: w - lr * (g + wd * w), for every variable (BN gamma included) ...
    w, gamma = keras.Variable([2.0]), keras.Variable([0.5], name="gamma")
    optimizer = CoupledSGD(0.1, momentum=0.0, weight_decay=0.5)
    optimizer.apply_gradients([(tf.constant([1.0]), w), (tf.constant([0.0]), gamma)])
    np.testing.assert_allclose(w.numpy(), [2.0 - 0.1 * (1.0 + 0.5 * 2.0)])
    np.testing.assert_allclose(gamma.numpy(), [0.5 - 0.1 * 0.5 * 0.5])
    # ... unless excluded the Keras way.
    w, gamma = keras.Variable([2.0]), keras.Variable([0.5], name="gamma")
    optimizer = CoupledSGD(0.1, momentum=0.0, weight_decay=0.5)
    optimizer.exclude_from_weight_decay(var_names=["gamma"])
    optimizer.apply_gradients([(tf.constant([1.0]), w), (tf.constant([0.0]), gamma)])
    np.testing.assert_allclose(gamma.numpy(), [0.5])

    # With momentum, Keras's own weight_decay (decoupled) gives a different trajectory.
    def run(optimizer):
        v = keras.Variable([1.0])
        for _ in range(3):
            optimizer.apply_gradients([(tf.constant([0.0]), v)])
        return float(v.numpy()[0])

    coupled = run(CoupledSGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.1))
    decoupled = run(keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.1))
    assert coupled == pytest.approx(_torch_sgd(np.array(1.0), lambda v: 0.0, [0.1] * 3, 0.9, 0.1, True))
    assert decoupled == pytest.approx(0.99**3)  # shrink-only, untouched by momentum
    assert coupled < decoupled - 0.03


def test_cosine_schedule_warms_up_linearly_then_decays_to_zero():
    recipe = Recipe(epochs=10, schedule="cosine", warmup_epochs=1)
    schedule = recipe.learning_rate(steps_per_epoch=10)  # 100 steps: 10 of warm-up, 90 of cosine
    expected = {0: 0.0, 5: 0.05, 10: 0.1, 55: 0.05, 100: 0.0}
    for step, lr in expected.items():
        assert _lr_at(schedule, step) == pytest.approx(lr, abs=1e-7), f"step {step}"
    lrs = [_lr_at(schedule, s) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # only down after the warm-up
    no_warmup = Recipe(epochs=10, schedule="cosine").learning_rate(10)
    assert _lr_at(no_warmup, 0) == pytest.approx(0.1) and _lr_at(no_warmup, 50) == pytest.approx(0.05)
    assert Recipe.from_config(json.loads(json.dumps(recipe.get_config()))) == recipe


def test_a_warm_up_before_the_step_schedule_keeps_its_milestones():
    schedule = Recipe(epochs=4, warmup_epochs=0.5).learning_rate(steps_per_epoch=10)  # 40 steps
    assert [_lr_at(schedule, s) for s in (0, 2, 5, 19, 20, 30)] == pytest.approx(
        [0.0, 0.04, 0.1, 0.1, 0.01, 0.001])


@pytest.mark.parametrize("kwargs", [{"schedule": "cosine", "warmup_epochs": 0.5}, {"warmup_epochs": 0.5}])
def test_a_model_compiled_with_a_warm_up_saves_and_loads_in_safe_mode(tmp_path, kwargs):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(inputs))
    Recipe(epochs=2, **kwargs).compile(model, steps_per_epoch=4)
    model.fit(np.ones((16, 4), "float32"), np.arange(16) % 3, batch_size=4, epochs=1, verbose=0)
    lr = float(model.optimizer.learning_rate)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert float(loaded.optimizer.learning_rate) == pytest.approx(lr)


def test_compile_and_fit_one_epoch_and_save(tmp_path):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    images = np.random.default_rng(0).normal(size=(32, 8, 8, 1)).astype("float32")
    labels = np.arange(32) % 3
    recipe = Recipe(epochs=1, batch_size=8)
    recipe.compile(model, steps_per_epoch=4)
    assert isinstance(model.optimizer, CoupledSGD) and model.optimizer.nesterov
    gamma_before = model.layers[2].gamma.numpy().copy()
    history = model.fit(images, labels, batch_size=recipe.batch_size, epochs=recipe.epochs, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and "accuracy" in history.history
    assert int(model.optimizer.iterations) == 4
    assert not np.allclose(model.layers[2].gamma.numpy(), gamma_before)

    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)  # safe mode: the optimizer is a registered kslim object
    assert isinstance(loaded.optimizer, CoupledSGD)
    assert loaded.optimizer.get_config()["weight_decay"] == pytest.approx(1e-4)


def test_compile_refuses_logits_loss_on_a_softmax_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="probs")(inputs))
    with pytest.raises(ValueError, match="ends with a softmax \\(layer 'probs'\\) but from_logits=True"):
        Recipe().compile(model, steps_per_epoch=1)
    Recipe().compile(model, steps_per_epoch=1, from_logits=False)
    with pytest.raises(TypeError, match="model must be a keras.Model, got str"):
        Recipe().compile("model.keras", steps_per_epoch=1)


def test_paper_recipe_trains_on_kslim_data():
    recipe = kslim.recipe.paper("mnist").replace(epochs=1, batch_size=32)
    train = kslim.data.load("mnist", batch_size=recipe.batch_size, limit=64, seed=0)
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    recipe.compile(model, steps_per_epoch=int(train.cardinality()))
    history = model.fit(train, epochs=recipe.epochs, verbose=0)
    assert int(model.optimizer.iterations) == 2 and np.isfinite(history.history["loss"][0])
