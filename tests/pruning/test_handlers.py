"""Layer handlers: a custom layer stops being a barrier once it has a handler of a few lines."""

import json
import pathlib

import keras
import numpy as np
import pytest

import kslim
from kslim.pruning import LayerHandler, get_handler, register_handler
from kslim._internal import keras_api
from kslim.pruning.handlers import base
from kslim.testing import archs
from kslim.testing.exactness import inputs, rel_err, sparsify

L = keras.layers
DATA = pathlib.Path(__file__).parent / "data"


@keras.saving.register_keras_serializable(package="kslim_tests")
class ChannelScale(L.Layer):
    """y[..., c] = w[c] * x[..., c] (like ConvNeXt's LayerScale)."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="w")

    def call(self, x):
        return x * self.w


@keras.saving.register_keras_serializable(package="kslim_tests")
class PlainDense(L.Layer):
    """A Dense layer written from scratch: kernel (in, out) and bias (out,)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel) + self.bias

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class ChannelScaleHandler(LayerHandler):
    def classify(self, layer, rank):
        return "per_channel", None  # its weight follows the channels: the default weight_axes


class PlainDenseHandler(LayerHandler):
    def classify(self, layer, rank):
        return "producer", None

    def weight_axes(self, layer, shapes):
        return [{0: "in", 1: "out"}, {0: "out"}]

    def edit_config(self, layer, config, out_keep):
        config["units"] = len(out_keep)

    def macs(self, layer, x, y):
        return x[-1] * y[-1]

    def bias_delta(self, layer, weights, dropped, values):
        return np.asarray(values, np.float64)[dropped] @ weights[0][dropped]

    def bias_index(self, layer):
        return 1


@pytest.fixture
def registry():
    saved = dict(base._REGISTRY)
    yield
    base._REGISTRY.clear()
    base._REGISTRY.update(saved)


def _custom_model():
    x = inp = keras.Input((8, 8, 3))
    for i, (width, kernel) in enumerate(((12, 3), (16, 1))):  # 1x1: constants fold exactly
        x = L.Conv2D(width, kernel, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = L.ReLU(name=f"relu{i}")(x)
        x = ChannelScale(name=f"scale{i}")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = PlainDense(24, name="fc1")(x)
    x = L.BatchNormalization(momentum=0.9, name="fc1_bn")(x)
    x = L.ReLU(name="fc1_relu")(x)
    return keras.Model(inp, PlainDense(10, name="logits")(x), name="custom")


def _set_scales(model, seed=3):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, ChannelScale):
            layer.w.assign(rng.uniform(0.5, 2.0, layer.w.shape[0]).astype("float32"))


def test_custom_layers_are_barriers_until_a_handler_is_registered(registry):
    model = sparsify(_custom_model(), beta_zero=False)
    _set_scales(model)
    plan = kslim.plan(model, threshold=1e-6)
    assert plan.factors[1] == 0
    assert any("register a handler with kslim.pruning.register_handler" in r for r in plan.kept_reasons)

    register_handler(ChannelScale, ChannelScaleHandler())
    register_handler(PlainDense, PlainDenseHandler)  # a class is instantiated
    plan = kslim.plan(model, threshold=1e-6)
    assert plan.factors[1] >= 0.25 * plan.factors[0]
    x = inputs(model)
    slim = kslim.prune(model, plan=plan)
    # betas kept: the constants of pruned channels pass through ChannelScale and are folded
    # into PlainDense's bias by its handler's bias_delta.
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    assert slim.get_layer("scale1").w.shape[0] == slim.get_layer("conv1").filters
    assert slim.get_layer("fc1").units == plan.layers["fc1"]["channels"][1] < 24
    # profile counts the custom producer's FLOPs through the same handler.
    fc1 = next(r for r in kslim.profile(model).layers if r.name == "fc1")
    assert fc1.flops == 2 * 16 * 24
    assert kslim.profile(slim).flops == plan.flops[1]


def test_nearest_registered_class_in_the_mro_wins(registry):
    class MyConv(L.Conv2D):
        pass

    layer = MyConv(4, 3)
    assert get_handler(layer) is get_handler(L.Conv2D(4, 3))
    mine = register_handler(MyConv, LayerHandler())
    assert get_handler(layer) is mine
    assert get_handler(L.Conv2D(4, 3)) is not mine


def test_register_handler_refuses_what_is_not_a_handler(registry):
    with pytest.raises(TypeError, match=r"handler for ChannelScale must be a kslim.pruning.LayerHandler"):
        register_handler(ChannelScale, object())
    with pytest.raises(TypeError, match=r"layer_class must be a layer class"):
        register_handler("ChannelScale", LayerHandler())

    @register_handler(ChannelScale)
    class Decorated(ChannelScaleHandler):
        pass

    assert isinstance(get_handler(ChannelScale()), Decorated)


def test_every_builtin_layer_of_the_test_architectures_has_a_handler():
    for name in ("vgg", "resnet", "preact_resnet", "densenet", "mobilenet", "se_net", "layer_zoo"):
        model = archs.ALL[name]()
        for layer in model.layers:
            if isinstance(layer, L.InputLayer):
                continue
            assert get_handler(layer) is not base._BARRIER, (name, layer.name)


def test_a_plan_written_by_kslim_0_1_0_still_loads_and_applies():
    # Written by the code before the layer handlers (commit a8920f0) for this architecture.
    text = (DATA / "plan_0.1.0_preact_resnet.json").read_text()
    plan = kslim.Plan.from_json(text)
    assert plan.model_name == "preact_resnet" and plan.factors == [304, 103]
    model = sparsify(archs.preact_resnet())
    fresh = json.loads(kslim.plan(model, threshold=1e-6).to_json())["layers"]
    # The same scaling factors pruned; the channel order of the stream is newer (kslim.pruning.permutation),
    # and so is dropping at their producers the second stage's stream channels that both its readers
    # (s1b1_bn1, final_bn) prune: 0.1.0 computed them and selected them away.
    old = json.loads(text)["layers"]
    stream = {"s1b0_down", "s1b0_conv3", "s1b1_conv3"}
    for name, rec in old.items():
        for key in ("class", "zeroed") if name in stream else ("class", "zeroed", "channels", "params", "flops"):
            assert fresh[name][key] == rec[key], (name, key)
        everything = list(range(rec["channels"][0]))
        if name in stream:
            assert rec["out"] is None and fresh[name]["channels"] == [64, 42], name
            continue
        assert sorted(fresh[name]["out"] or everything) == (rec["out"] or everything), name
    assert all(fresh[name]["channels"][0] == fresh[name]["channels"][1] for name in fresh.keys() - old.keys())
    slim = kslim.prune(model, plan=plan)
    assert slim.get_layer("s1b0_down").filters == 64  # the old plan keeps the stream whole, as it said
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5


def test_keras_ops_calls_are_understood_like_their_layer_twins():
    # Issue 12, item 3: MobileNetV3's hard-sigmoid (`ReLU(6)(x + 3) * (1 / 6)`, as ops) tied every SE gate
    # to its block's channels and kept them: 422 of 2,367 zeroed channels were removed at 64x64.
    model = sparsify(archs.keras_mobilenetv3small(), frac=0.4)
    plan = kslim.plan(model, threshold=1e-8)
    assert not [r for r in plan.kept_reasons if "operation" in r], plan.kept_reasons
    zeroed = sum(int(np.sum(np.abs(keras.ops.convert_to_numpy(layer.gamma)) < 1e-8))
                 for layer in model.layers if isinstance(layer, L.BatchNormalization))
    assert plan.factors[1] >= 0.5 * zeroed  # 61% here (18% before); a residual add ties groups that must all be zero
    slim = kslim.prune(model, plan=plan)
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    assert slim.count_params() < 0.8 * model.count_params()


def test_ops_split_gets_the_pruned_widths_of_its_outputs():
    model = sparsify(archs.ops_net(), frac=0.5)
    plan = kslim.plan(model, threshold=1e-6)
    slim = kslim.prune(model, plan=plan)
    split = next(n for n in keras_api.ordered_nodes(slim) if type(n.operation).__name__ == "Split")
    widths = [t.shape[-1] for t in split.output_tensors]
    assert sum(widths) == slim.get_layer("wide_conv").filters < 32
    assert widths[0] == slim.get_layer("part_conv").input.shape[-1]
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5


def test_an_op_with_a_constant_of_many_values_stays_a_barrier_and_says_why():
    x = inp = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="conv_a")(x)
    x = L.BatchNormalization(name="bn_a")(x)
    x = x * np.linspace(0.5, 1.5, 8).astype("float32")  # a per-channel constant kslim cannot slice
    x = L.GlobalAveragePooling2D()(x)
    model = sparsify(keras.Model(inp, L.Dense(3, name="out")(x)), frac=0.5)
    reasons = " ".join(kslim.plan(model, threshold=1e-6).kept_reasons)
    assert "(Multiply) uses a constant of shape (8,)" in reasons and "register_handler" in reasons
