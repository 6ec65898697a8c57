"""kslim.models: every registered model builds, runs, has its reference size, and takes widths."""

import keras
import numpy as np
import pytest

import kslim
from kslim.layers import ChannelMask

_VGG_CFGS = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M"] + [512] * 4,
}


def _vgg_size(cfg, classes=10):
    """Trainable params (conv + BN gamma/beta + classifier) and FLOPs (2 x MACs), by hand."""
    params, flops, channels, size = 0, 0, 3, 32
    for v in cfg:
        if v == "M":
            size //= 2
            continue
        params += 9 * channels * v + 2 * v
        flops += 2 * 9 * channels * v * size * size
        channels = v
    return params + channels * classes + classes, flops + 2 * channels * classes


# name: (trainable params, FLOPs) with CIFAR-10 / MNIST inputs, and where the numbers come from.
REFERENCE = {
    "vgg11": _vgg_size(_VGG_CFGS[11]),  # by hand from the official cfg
    "vgg13": _vgg_size(_VGG_CFGS[13]),
    "vgg16": _vgg_size(_VGG_CFGS[16]),
    "vgg19": (20.04e6, 7.97e8),  # Liu et al. 2017, Table 1
    "preresnet164": (1.70e6, 4.99e8),  # Liu et al. 2017, Table 1
    "densenet40": (1.02e6, 5.33e8),  # Liu et al. 2017, Table 1
    # By hand, option-B shortcuts: convs 463,792 + BN 2 x 1,232 + fc 650; MACs 69,124,736.
    "resnet32": (466_906, 2 * 69_124_736),
    # By hand: 156 + 2,416 + 48,120 + 10,164 + 850; MACs 117,600 + 240,000 + 48,000 + 10,080 + 840.
    "lenet5": (61_706, 2 * 416_520),
    # By hand: 520 + 25,050 + 400,500 + 5,010; MACs 288,000 + 1,600,000 + 400,000 + 5,000.
    "lenet5_caffe": (431_080, 2 * 2_293_000),
    # By hand: 784*500 + 500*300 (no bias before BN) + BN 2 x 800 + 300*10 + 10; MACs 545,000.
    "mlp": (546_610, 2 * 545_000),
}
_NO_BN = {"lenet5", "lenet5_caffe"}
_DEFAULT_SHAPE = {"lenet5": (28, 28, 1), "lenet5_caffe": (28, 28, 1), "mlp": (28, 28, 1)}

_built = {}


def _default(name):
    """The default model, built once per test session (building is the slow part)."""
    if name not in _built:
        _built[name] = kslim.models.get(name)
    return _built[name]


def _width_layers(model):
    """The layers `widths` sets, in graph order: convs and hidden dense layers, no shortcuts."""
    return [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
        and layer.name != "classifier"
        and not layer.name.endswith(("_downsample", "_shortcut_conv"))
    ]


def _channels(layer):
    return layer.units if isinstance(layer, keras.layers.Dense) else layer.filters


def test_every_registered_model_has_a_reference():
    assert kslim.models.list_models() == sorted(REFERENCE)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_builds_runs_and_matches_reference_size(name):
    model = _default(name)
    assert model.name == name
    shape = _DEFAULT_SHAPE.get(name, (32, 32, 3))
    assert tuple(model.input_shape[1:]) == shape
    x = np.random.default_rng(0).normal(size=(2,) + shape).astype("float32")
    y = keras.ops.convert_to_numpy(model(x, training=False))
    assert y.shape == (2, 10)
    assert np.all(np.isfinite(y))
    assert isinstance(model.layers[-1], keras.layers.Dense)
    assert model.layers[-1].activation is keras.activations.linear  # logits

    params, flops = REFERENCE[name]
    p = kslim.profile(model)
    assert p.params == model.count_params()
    assert p.trainable_params == pytest.approx(params, rel=0.01), p.trainable_params
    assert p.flops == pytest.approx(flops, rel=0.02), p.flops
    assert len({layer.name for layer in model.layers}) == len(model.layers)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_widths_build_a_narrower_model_with_the_same_names(name):
    default = _default(name)
    full = [_channels(layer) for layer in _width_layers(default)]
    half = [max(1, w // 2) for w in full]
    kwargs = {} if name in _NO_BN else {"gamma_init": 0.25}
    slim = kslim.models.get(name, num_classes=3, widths=half, **kwargs)

    assert [layer.name for layer in slim.layers] == [layer.name for layer in default.layers]
    assert [_channels(layer) for layer in _width_layers(slim)] == half
    assert slim.output_shape == (None, 3)
    assert kslim.profile(slim).flops < 0.6 * kslim.profile(default).flops
    bns = [layer for layer in slim.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bool(bns) == (name not in _NO_BN)
    for bn in bns:
        np.testing.assert_array_equal(bn.gamma.numpy(), 0.25)
        assert bn.momentum == 0.9
    for bn in default.layers:  # the paper's gamma init by default
        if isinstance(bn, keras.layers.BatchNormalization):
            np.testing.assert_array_equal(bn.gamma.numpy(), 0.5)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_bad_widths_give_clear_errors(name):
    full = [_channels(layer) for layer in _width_layers(_default(name))]
    first = _width_layers(_default(name))[0].name
    if name != "mlp":  # the MLP takes any number of hidden layers
        with pytest.raises(
            ValueError, match=rf"widths must have {len(full)} entries.*got {len(full) - 1}"
        ):
            kslim.models.get(name, widths=full[:-1])
    with pytest.raises(
        ValueError, match=rf"widths\[0\] \(layer '{first}'\) must be at least 1, got 0"
    ):
        kslim.models.get(name, widths=[0] + full[1:])
    with pytest.raises(TypeError, match=r"widths\[0\].*must be an int, got 8.5"):
        kslim.models.get(name, widths=[8.5] + full[1:])


def test_documented_width_orders():
    vgg19 = [_channels(layer) for layer in _width_layers(_default("vgg19"))]
    assert vgg19 == [w for w in _VGG_CFGS[19] if w != "M"]
    pre = [_channels(layer) for layer in _width_layers(_default("preresnet164"))]
    assert pre == [16] + 18 * [16, 16, 64] + 18 * [32, 32, 128] + 18 * [64, 64, 256]
    dense = [_channels(layer) for layer in _width_layers(_default("densenet40"))]
    assert dense == [16] + 12 * [12] + [160] + 12 * [12] + [304] + 12 * [12]
    res = [_channels(layer) for layer in _width_layers(_default("resnet32"))]
    assert res == [16] + 5 * [16, 16] + 5 * [32, 32] + 5 * [64, 64]


def test_widths_that_are_added_together_must_be_equal():
    pre = [16] + 18 * [16, 16, 64] + 18 * [32, 32, 128] + 18 * [64, 64, 256]
    pre[6] = 60  # stage1_block2_conv3, added to stage1_block1_conv3
    with pytest.raises(
        ValueError, match=r"'stage1_block2_conv3'.*must equal.*'stage1_block1_conv3'.*added"
    ):
        kslim.models.get("preresnet164", widths=pre)
    res = [12] + 5 * [16, 16] + 5 * [32, 32] + 5 * [64, 64]  # stem is added to stage 1
    with pytest.raises(ValueError, match=r"'stage1_block1_conv2'.*must equal.*'stem_conv'"):
        kslim.models.get("resnet32", widths=res)


def test_unknown_name_lists_the_models():
    with pytest.raises(ValueError, match=r"Unknown model name 'vgg20'.*densenet40.*vgg19"):
        kslim.models.get("vgg20")


def test_register_adds_a_builder_and_refuses_duplicates():
    @kslim.models.register(name="_test_tiny")
    def tiny(num_classes=10, input_shape=None):
        x = keras.Input(input_shape or (4,))
        return keras.Model(x, keras.layers.Dense(num_classes)(x))

    try:
        assert "_test_tiny" in kslim.models.list_models()
        assert kslim.models.get("_test_tiny", num_classes=3).output_shape == (None, 3)
        with pytest.raises(ValueError, match="'_test_tiny' is already registered"):
            kslim.models.register(tiny, name="_test_tiny")
    finally:
        kslim.models.registry._REGISTRY.pop("_test_tiny")


def test_bad_builder_arguments():
    with pytest.raises(ValueError, match="depth must be one of"):
        kslim.models.vgg(depth=17)
    with pytest.raises(ValueError, match=r"depth must be 9 \* n \+ 2.*got 50"):
        kslim.models.preresnet(depth=50)
    with pytest.raises(ValueError, match="bn_momentum.*got 1.5.*PyTorch"):
        kslim.models.get("vgg11", bn_momentum=1.5)
    with pytest.raises(ValueError, match=r"input_shape=\(8, 8, 3\) is too small"):
        kslim.models.get("vgg11", input_shape=(8, 8, 3))
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        kslim.models.get("lenet5", num_classes=0)


def test_lenet5_and_mlp_channel_masks():
    lenet = kslim.models.get("lenet5", channel_masks=True, input_shape=(32, 32, 1))
    masks = [layer.name for layer in lenet.layers if isinstance(layer, ChannelMask)]
    assert masks == ["conv1_mask", "conv2_mask", "fc1_mask", "fc2_mask"]
    assert lenet.get_layer("fc1").kernel.shape == (6 * 6 * 16, 120)

    caffe = kslim.models.get("lenet5_caffe", channel_masks=True)
    masks = [layer.name for layer in caffe.layers if isinstance(layer, ChannelMask)]
    assert masks == ["conv1_mask", "conv2_mask", "fc1_mask"]
    assert caffe.get_layer("fc1").kernel.shape == (4 * 4 * 50, 500)
    with pytest.raises(ValueError, match=r"lenet5_caffe: input_shape=\(15, 15, 1\) is too small"):
        kslim.models.get("lenet5_caffe", input_shape=(15, 15, 1))
    kslim.models.get("lenet5_caffe", input_shape=(16, 16, 1))

    mlp = kslim.models.get("mlp", batchnorm=False, channel_masks=True)
    assert [layer.name for layer in mlp.layers if isinstance(layer, ChannelMask)] == [
        "fc1_mask",
        "fc2_mask",
    ]
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in mlp.layers)
    assert kslim.profile(kslim.models.get("mlp", widths=[300, 100])).trainable_params == 267_010
    with pytest.raises(ValueError, match="batchnorm=True and channel_masks=True"):
        kslim.models.get("mlp", channel_masks=True)
