"""add_channel_masks reaches inside nested models and KerasHub backbones, as prune does."""

import keras
import numpy as np
import pytest
from keras import layers as L

import kslim
from kslim.layers.channel_mask import ChannelMask


def _masks(model):
    return sorted(layer.name for layer in model.layers if isinstance(layer, ChannelMask))


def test_masks_go_inside_a_nested_sequential_stem_and_a_nested_backbone():
    stem = keras.Sequential([keras.Input((16, 16, 3)), L.Conv2D(8, 3, padding="same", activation="relu", name="s1"),
                             L.Conv2D(8, 3, strides=2, padding="same", name="s2")], name="stem")
    x = keras.Input((8, 8, 8))
    inner = keras.Model(x, L.Conv2D(16, 3, padding="same", activation="relu", name="b1")(x), name="backbone")
    inp = keras.Input((16, 16, 3))
    h = L.GlobalAveragePooling2D(name="gap")(inner(stem(inp)))
    model = keras.Model(inp, L.Dense(4, name="head")(L.Dense(12, activation="relu", name="fc")(h)), name="nested")
    masked = kslim.add_channel_masks(model)
    assert _masks(masked) == ["b1_mask", "fc_mask", "s1_mask", "s2_mask"]
    xs = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(masked(xs, training=False), model(xs, training=False), rtol=1e-5, atol=1e-6)


def test_a_keras_hub_vgg_backbone_gets_masks():
    keras_hub = pytest.importorskip("keras_hub")
    # It failed with KeyError: 'layers' (a KerasHub config holds its constructor's arguments).
    model = keras_hub.models.VGGBackbone(stackwise_num_repeats=[1, 1], stackwise_num_filters=[8, 16],
                                         image_shape=(16, 16, 3))
    masked = kslim.add_channel_masks(model)
    assert _masks(masked) == ["block1_conv1_mask"]  # the last convolution is the output: no mask
    xs = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(masked(xs, training=False), model(xs, training=False), rtol=1e-5, atol=1e-6)


def test_the_refusal_counts_what_each_producer_is():
    x = keras.Input((8, 8, 3))
    h = L.ReLU()(L.BatchNormalization(name="bn")(L.Conv2D(8, 3, name="conv")(x)))
    model = keras.Model(x, L.Dense(3, name="out")(L.Flatten()(h)))
    with pytest.raises(ValueError, match=r"has no Conv/Dense layer that could take a ChannelMask \(1 scored by a "
                                         r"BatchNormalization or mask, 1 feeding the output\)"):
        kslim.add_channel_masks(model)
    with pytest.raises(ValueError, match=r"\(1 excluded, 1 feeding the output\)"):
        kslim.add_channel_masks(keras.Model(x, L.Dense(3, name="o")(L.Flatten()(L.Conv2D(4, 3, name="c")(x)))),
                                exclude=["c"])


def test_advice_says_what_the_model_has():
    x = keras.Input((8, 8, 3))
    conv = L.Conv2D(8, 3, padding="same", name="conv")
    h = L.GroupNormalization(groups=2, name="gn")(conv(x))
    gn_model = keras.Model(x, L.Dense(3, name="out")(L.GlobalAveragePooling2D()(L.ReLU()(h))))
    with pytest.raises(ValueError, match=r"it normalises with GroupNormalization \(e.g. 'gn'\), which mixes the "
                                         r"channels of a group"):
        kslim.plan(gn_model, ratio=0.5)
    with pytest.raises(ValueError, match=r"\(1 feeding the output, 1 read by a normalization that mixes channels\)"):
        kslim.add_channel_masks(gn_model)  # masks it could never prune: none, and said why

    bn = L.BatchNormalization(name="bn")
    frozen_model = keras.Model(x, L.Dense(3, name="out2")(L.GlobalAveragePooling2D()(bn(conv(x)))))
    bn.trainable = False
    with pytest.raises(ValueError, match=r"its 1 BatchNormalization layers are frozen \(trainable=False, e.g. "
                                         r"'bn'\).*set trainable = True"):
        kslim.slim(frozen_model, None)

    y = keras.Input((8, 8, 3))
    block_in = keras.Input((8, 8, 3))
    block = keras.Model(block_in, L.ReLU()(L.BatchNormalization(name="shared_bn")(
        L.Conv2D(3, 3, padding="same", name="shared_conv")(block_in))), name="block")
    twice = keras.Model(y, L.Dense(3, name="out3")(L.GlobalAveragePooling2D()(block(block(y)))))
    with pytest.raises(ValueError, match=r"its BatchNormalization layers are kept whole: layer 'shared_bn' is "
                                         r"shared by 2 calls.*give each call its own layers"):
        kslim.plan(twice, ratio=0.5)


def test_a_shared_bn_that_is_kept_says_why_in_the_plan():
    y = keras.Input((8, 8, 3))
    block_in = keras.Input((8, 8, 3))
    block = keras.Model(block_in, L.ReLU()(L.BatchNormalization(name="shared_bn")(
        L.Conv2D(3, 3, padding="same", name="shared_conv")(block_in))), name="block")
    h = L.ReLU()(L.BatchNormalization(name="own_bn")(L.Conv2D(8, 3, padding="same", name="own_conv")(block(block(y)))))
    plan = kslim.plan(keras.Model(y, L.Dense(3, name="out")(L.GlobalAveragePooling2D()(h))), ratio=0.5)
    assert plan.kept_reasons.get("not scored: layer 'shared_bn' is shared by 2 calls") == 3, plan.kept_reasons
    assert "shared by 2 calls" in plan.summary(print_fn=False)
