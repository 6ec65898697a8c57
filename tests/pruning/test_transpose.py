"""Decoders: pruning the input channels of a transposed convolution is exact, betas kept."""

import keras
import numpy as np
import pytest
from keras import layers as L

import kslim
from kslim.testing.exactness import masked_output, rel_err, sparsify


def _decoder(kernel, strides, padding, rank=2, size=8, output_padding=None):
    conv, transposed = ((L.Conv1D, L.Conv1DTranspose) if rank == 1 else (L.Conv2D, L.Conv2DTranspose))
    x = inp = keras.Input((size,) * rank + (3,))
    x = conv(16, 3, padding="same", use_bias=False, name="enc")(x)
    x = L.ReLU(name="enc_relu")(L.BatchNormalization(momentum=0.9, name="enc_bn")(x))
    x = transposed(12, kernel, strides=strides, padding=padding, output_padding=output_padding, name="up")(x)
    x = L.ReLU(name="up_relu")(L.BatchNormalization(momentum=0.9, name="up_bn")(x))
    return keras.Model(inp, conv(4, 1, name="head")(x), name="decoder")


@pytest.mark.parametrize("kernel, strides, padding, rank, output_padding", [
    (4, 2, "same", 2, None), (3, 1, "valid", 2, None), (5, 2, "same", 2, None), (3, 2, "valid", 2, 1),
    (1, 2, "valid", 2, None), (4, 2, "same", 1, None),
])
def test_a_pruned_decoder_computes_what_the_masked_one_does(kernel, strides, padding, rank, output_padding):
    model = sparsify(_decoder(kernel, strides, padding, rank, output_padding=output_padding), beta_zero=False)
    plan = kslim.plan(model, threshold=1e-8)
    assert plan.layers["enc_bn"]["zeroed"], "nothing of the encoder pruned"
    x = np.random.default_rng(1).standard_normal((2, *model.inputs[0].shape[1:])).astype("float32")
    slim = kslim.prune(model, plan=plan)
    assert rel_err(masked_output(model, plan, x), slim(x, training=False)) < 1e-5
    borders = [layer for layer in slim.layers if isinstance(layer, kslim.layers.BorderBias)]
    assert borders
    for border in borders:  # its config round-trips (Keras 3.12's own transposed layers drop output_padding)
        again = kslim.layers.BorderBias.from_config(border.get_config())
        again.build((None, *border.input.shape[1:]))
        again.set_weights(border.get_weights())
        np.testing.assert_array_equal(again.bias_image(), border.bias_image())


def test_a_decoder_of_unknown_size_keeps_the_channels_it_cannot_fold_and_says_why():
    x = inp = keras.Input((None, None, 3))
    x = L.Conv2D(16, 3, padding="same", use_bias=False, name="enc")(x)
    x = L.ReLU(name="enc_relu")(L.BatchNormalization(momentum=0.9, name="enc_bn")(x))
    x = L.Conv2DTranspose(12, 4, strides=2, padding="same", name="up")(x)
    x = L.ReLU(name="up_relu")(L.BatchNormalization(momentum=0.9, name="up_bn")(x))
    model = sparsify(keras.Model(inp, L.Conv2D(4, 1, name="head")(x)), beta_zero=False)
    bn = model.get_layer("enc_bn")
    gamma, beta, mean, var = bn.get_weights()
    beta[:4] = 0.0  # these four emit exactly 0 once pruned: they may go
    gamma[:8] = 0.0
    bn.set_weights([gamma, beta, mean, var])
    plan = kslim.plan(model, threshold=1e-8)
    assert plan.layers["enc_bn"]["zeroed"] == [0, 1, 2, 3], plan.layers.get("enc_bn")
    assert any("transposed convolution of unknown input size" in why for why in plan.kept_reasons), plan.kept_reasons
    xs = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype("float32")
    assert rel_err(masked_output(model, plan, xs), kslim.prune(model, plan=plan)(xs, training=False)) < 1e-5
