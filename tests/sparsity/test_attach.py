"""Tests of kslim.attach / kslim.detach."""

import warnings

import keras
import numpy as np
import pytest

import kslim
from kslim.layers import ChannelMask

LAM = 1e-2


def _conv_net(name="net", gamma_init=0.5, momentum=0.99, widths=(4, 8)):
    """Conv-BN-ReLU x2 and a classifier; BN layers are named bn1, bn2."""
    layers = [keras.Input((8, 8, 1))]
    for i, width in enumerate(widths, start=1):
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i}"),
            keras.layers.BatchNormalization(
                momentum=momentum,
                gamma_initializer=keras.initializers.Constant(gamma_init),
                name=f"bn{i}",
            ),
            keras.layers.ReLU(),
        ]
    layers += [keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="fc")]
    return keras.Sequential(layers, name=name)


def _data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 8, 8, 1)).astype("float32"), rng.integers(0, 3, size=n)


def _random_gammas(model, seed=1):
    """Gives every BN gamma distinct values of both signs; returns sum |gamma|."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            value = rng.uniform(-1.0, 1.0, size=layer.gamma.shape).astype("float32")
            layer.gamma.assign(value)
            total += float(np.abs(value).sum())
    return total


def _compile_frozen(model):
    # lr=0: the weights do not move, so one full-batch epoch reports exactly
    # the loss at the current weights (BN uses the batch statistics).
    model.compile(keras.optimizers.SGD(0.0), keras.losses.SparseCategoricalCrossentropy(True))


def _fit_loss(model, x, y):
    history = model.fit(x, y, batch_size=len(x), epochs=1, shuffle=False, verbose=0)
    return history.history["loss"][-1]


def _data_loss(model, x, y):
    """The cross-entropy part of the training loss, computed directly."""
    logits = model(x, training=True)
    return float(keras.losses.SparseCategoricalCrossentropy(True)(y, logits))


def _regularizers(model):
    return {
        layer.name: (layer.gamma_regularizer, layer.gamma.regularizer)
        for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    }


def test_l1_losses_equal_lam_times_sum_abs_gamma():
    model = _conv_net()
    total = _random_gammas(model)
    assert kslim.attach(model, lam=LAM) is model
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(sum(model.losses)), LAM * total, rtol=1e-6)
    for name, (on_layer, on_variable) in _regularizers(model).items():
        assert isinstance(on_layer, kslim.penalties.L1), name
        assert on_variable is on_layer, name
        assert on_layer.lam == LAM


@pytest.mark.parametrize("stage", ["fresh", "compiled", "trained"])
def test_penalty_is_in_the_training_loss_whenever_attached(stage):
    x, y = _data()
    model = _conv_net()
    total = _random_gammas(model)
    if stage != "fresh":
        _compile_frozen(model)
    if stage == "trained":
        # Keras now caches a traced train function without the penalty.
        np.testing.assert_allclose(_fit_loss(model, x, y), _data_loss(model, x, y), rtol=1e-5)
    kslim.attach(model, lam=LAM)
    if stage == "fresh":
        _compile_frozen(model)
    expected = _data_loss(model, x, y) + LAM * total
    np.testing.assert_allclose(_fit_loss(model, x, y), expected, rtol=1e-5)
    evaluated = model.evaluate(x, y, batch_size=len(x), verbose=0)

    kslim.detach(model)
    assert model.losses == []
    # `evaluate` reports the regularized loss too, so its cached function is reset as well.
    without = model.evaluate(x, y, batch_size=len(x), verbose=0)
    np.testing.assert_allclose(evaluated - without, LAM * total, rtol=1e-4)
    np.testing.assert_allclose(_fit_loss(model, x, y), _data_loss(model, x, y), rtol=1e-5)


def test_attach_after_fit_shrinks_gamma():
    x, y = _data(64)
    model = _conv_net()
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(True))
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    before = np.abs(model.get_layer("bn1").gamma.numpy()).sum()
    kslim.attach(model, lam=1.0)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    after = np.abs(model.get_layer("bn1").gamma.numpy()).sum()
    # 4 steps of lr * lam = 0.1 each pull every |gamma| (~0.5) towards 0.
    assert after < 0.5 * before


def test_save_and_load_keeps_the_penalty(tmp_path):
    model = _conv_net()
    total = _random_gammas(model)
    kslim.attach(model, lam=3e-3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    for name, (on_layer, on_variable) in _regularizers(loaded).items():
        assert type(on_layer) is kslim.penalties.L1, name
        assert on_layer.lam == 3e-3
        assert on_variable is not None, name
    np.testing.assert_allclose(float(sum(loaded.losses)), 3e-3 * total, rtol=1e-6)


def test_exclude_skips_the_named_layers():
    model = _conv_net()
    kslim.attach(model, lam=LAM, exclude=["bn1"])
    regs = _regularizers(model)
    assert regs["bn1"] == (None, None)
    assert isinstance(regs["bn2"][1], kslim.penalties.L1)
    expected = LAM * np.abs(model.get_layer("bn2").gamma.numpy()).sum()
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-6)


def test_unknown_exclude_name_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"exclude=\['bn9'\] .*valid names are: \['bn1', 'bn2'\]"):
        kslim.attach(_conv_net(), exclude=["bn1", "bn9"])


def test_nested_model_is_searched():
    inner = _conv_net(name="inner")
    x = keras.Input((8, 8, 1))
    y = keras.layers.Dense(2, name="head")(inner(x))
    outer = keras.Model(x, y, name="outer")
    total = _random_gammas(inner)
    kslim.attach(outer, lam=LAM)
    assert all(isinstance(v, kslim.penalties.L1) for _, v in _regularizers(inner).values())
    np.testing.assert_allclose(float(sum(outer.losses)), LAM * total, rtol=1e-6)


def test_subclassed_model_with_tracked_layers():
    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="subclassed")
            self.conv = keras.layers.Conv2D(4, 3)
            self.bn = keras.layers.BatchNormalization(name="bn")
            self.fc = keras.layers.Dense(2)

        def call(self, x, training=False):
            return self.fc(keras.ops.mean(self.bn(self.conv(x), training=training), axis=(1, 2)))

    model = Net()
    model(np.zeros((1, 8, 8, 1), "float32"))
    kslim.attach(model, lam=LAM)
    np.testing.assert_allclose(float(sum(model.losses)), LAM * 4.0, rtol=1e-6)  # gamma = ones


def test_unbuilt_model_gets_the_penalty_when_built():
    model = keras.Sequential([keras.layers.Dense(4), keras.layers.BatchNormalization(name="bn")])
    kslim.attach(model, lam=LAM)
    model.build((None, 3))
    assert isinstance(model.get_layer("bn").gamma.regularizer, kslim.penalties.L1)
    np.testing.assert_allclose(float(sum(model.losses)), LAM * 4.0, rtol=1e-6)


def test_channel_mask_model():
    x = keras.Input((5,))
    h = ChannelMask(name="mask1")(keras.layers.Dense(6, name="fc1")(x))
    model = keras.Model(x, keras.layers.Dense(2)(h), name="masked_mlp")
    values = np.array([0.5, -0.25, 0.0, 1.0, -2.0, 0.125], "float32")
    model.get_layer("mask1").mask.assign(values)
    kslim.attach(model, lam=LAM)
    layer = model.get_layer("mask1")
    assert isinstance(layer.mask_regularizer, kslim.penalties.L1)
    assert layer.mask.regularizer is layer.mask_regularizer
    np.testing.assert_allclose(float(sum(model.losses)), LAM * np.abs(values).sum(), rtol=1e-6)


def test_batchnorm_without_scale_and_frozen_batchnorm_are_skipped():
    x = keras.Input((3,))
    h = keras.layers.BatchNormalization(scale=False, name="no_scale")(keras.layers.Dense(4)(x))
    h = keras.layers.BatchNormalization(name="frozen")(keras.layers.Dense(4)(h))
    h = keras.layers.BatchNormalization(name="free")(keras.layers.Dense(4)(h))
    model = keras.Model(x, h)
    model.get_layer("frozen").trainable = False
    kslim.attach(model, lam=LAM)
    assert model.get_layer("frozen").gamma.regularizer is None
    assert len(model.losses) == 1


def test_model_without_scaling_factors_is_an_error():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization(scale=False)],
        name="plain",
    )
    with pytest.raises(
        ValueError,
        match=r"Model 'plain' has no trainable channel scaling factor.*BatchNormalization.*"
        r"kslim\.add_channel_masks\(model\)",
    ):
        kslim.attach(model)


def test_everything_excluded_is_an_error():
    with pytest.raises(ValueError, match=r"no trainable channel scaling factor to penalise out"):
        kslim.attach(_conv_net(), exclude=("bn1", "bn2"))


def test_invalid_arguments():
    with pytest.raises(ValueError, match=r"lam=-1"):
        kslim.attach(_conv_net(), lam=-1)
    with pytest.raises(ValueError, match=r"Unknown penalty 'l7'"):
        kslim.attach(_conv_net(), penalty="l7")
    with pytest.raises(TypeError, match=r"kslim.attach expects a keras.Model, got Dense"):
        kslim.attach(keras.layers.Dense(3))


def test_user_regularizer_is_not_overwritten_and_survives_detach():
    x = keras.Input((3,))
    h = keras.layers.Dense(4, kernel_regularizer="l2", name="fc")(x)
    h = keras.layers.BatchNormalization(name="bn_user", gamma_regularizer="l2")(h)
    model = keras.Model(x, keras.layers.BatchNormalization(name="bn_free")(h))
    message = r"'bn_user' already has gamma_regularizer=.*exclude=\['bn_user'\]"
    with pytest.raises(ValueError, match=message):
        kslim.attach(model)
    assert model.get_layer("bn_free").gamma.regularizer is None  # nothing was half-attached
    kslim.attach(model, exclude=["bn_user"])
    assert len(model.losses) == 3
    kslim.detach(model)
    assert len(model.losses) == 2  # the kernel and gamma L2 stay
    assert model.get_layer("bn_free").gamma_regularizer is None


def test_attach_again_replaces_the_penalty():
    model = _conv_net()
    total = _random_gammas(model)
    kslim.attach(model, lam=1e-3)
    kslim.attach(model, lam=5e-2)
    assert len(model.losses) == 2
    np.testing.assert_allclose(float(sum(model.losses)), 5e-2 * total, rtol=1e-6)


def _mnist_net():
    gamma = keras.initializers.Constant(0.5)  # Liu et al. initialise gamma to 0.5.
    layers = [keras.Input((28, 28, 1))]
    for width in (16, 32):
        layers += [
            keras.layers.Conv2D(width, 3, use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9, gamma_initializer=gamma),
            keras.layers.ReLU(),
            keras.layers.MaxPooling2D(),
        ]
    layers += [keras.layers.Flatten(), keras.layers.Dense(10)]
    return keras.Sequential(layers)


def _train_mnist(mnist, lam):
    x_train, y_train, x_test, y_test = mnist
    x_train = (x_train[:12000, ..., None] / 255.0).astype("float32")
    x_test = (x_test[..., None] / 255.0).astype("float32")
    keras.utils.set_random_seed(0)
    model = _mnist_net()
    if lam:
        kslim.attach(model, lam=lam)
    epochs, batch_size = 2, 128
    steps = epochs * int(np.ceil(len(x_train) / batch_size))
    lr = keras.optimizers.schedules.CosineDecay(0.1, steps)
    model.compile(
        keras.optimizers.SGD(lr, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train[:12000], batch_size=batch_size, epochs=epochs, verbose=0)
    accuracy = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)[1]
    gammas = [v.numpy() for v in model.trainable_weights if v.path.endswith("gamma")]
    gammas = np.abs(np.concatenate(gammas))
    return accuracy, gammas


def test_mnist_slimming_drives_most_gammas_to_zero_at_the_same_accuracy(mnist):
    accuracy_plain, gammas_plain = _train_mnist(mnist, lam=0.0)
    accuracy_slim, gammas_slim = _train_mnist(mnist, lam=3e-2)
    assert gammas_plain.size == gammas_slim.size == 48
    assert np.mean(gammas_slim < 1e-2) > 0.5, np.sort(gammas_slim)
    assert np.mean(gammas_plain < 1e-2) == 0.0, np.sort(gammas_plain)
    assert accuracy_plain > 0.9 and accuracy_slim > 0.9, (accuracy_plain, accuracy_slim)
    assert abs(accuracy_plain - accuracy_slim) < 0.03, (accuracy_plain, accuracy_slim)


def test_a_frozen_backbone_is_named_with_the_way_to_unfreeze_it():
    # Issue 12: transfer learning freezes the backbone; its BNs then get no penalty, silently.
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inp))
    x = keras.layers.BatchNormalization(name="head_bn")(keras.layers.Dense(16)(x))
    model = keras.Model(inp, keras.layers.Dense(10)(x))
    base.trainable = False
    with pytest.warns(UserWarning, match=rf"attach: \d+ scaling factors in '{base.name}' are frozen "
                                         r"\(trainable=False\) and get no penalty.*set trainable = True"):
        kslim.attach(model, lam=1e-4)
    assert model.get_layer("head_bn").gamma_regularizer is not None
    frozen_only = keras.Model(inp, keras.layers.GlobalAveragePooling2D()(base(inp)))
    with pytest.raises(ValueError, match=r"are frozen .* Unfreeze them first \(e.g. base.trainable = True"):
        kslim.attach(frozen_only, lam=1e-4)
    base.trainable = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kslim.attach(model, lam=1e-4)
