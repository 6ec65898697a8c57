"""kslim.profile: exact parameter, FLOP and memory counts on tiny hand-computed models."""

import json

import keras
import numpy as np
import pytest

import kslim
from kslim.profiling import Profile

L = keras.layers


def _one_layer(input_shape, layer):
    x = keras.Input(input_shape, name="x")
    return keras.Model(x, layer(x), name="one")


def _row(p, name):
    (row,) = [r for r in p.layers if r.name == name]
    return row


@pytest.mark.parametrize(
    "input_shape, layer, params, macs",
    [
        # 8x8 outputs x 4 filters x (3x3x3) window; 3*3*3*4 + 4 biases.
        ((8, 8, 3), L.Conv2D(4, 3, padding="same", name="l"), 112, 8 * 8 * 4 * 27),
        # Stride 2, valid: 4x4 outputs.
        ((9, 9, 3), L.Conv2D(4, 3, strides=2, name="l"), 112, 4 * 4 * 4 * 27),
        # Two groups: each filter sees 2 of the 4 input channels.
        (
            (8, 8, 4),
            L.Conv2D(6, 3, padding="same", groups=2, name="l"),
            3 * 3 * 2 * 6 + 6,
            64 * 6 * 9 * 2,
        ),
        # Dense on a 3-D input acts on each of the 5 rows.
        ((5, 7), L.Dense(3, name="l"), 7 * 3 + 3, 5 * 7 * 3),
        # Depthwise, multiplier 2: 8 output channels, each a 3x3 window of one input channel.
        (
            (6, 6, 4),
            L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="l"),
            72 + 8,
            36 * 8 * 9,
        ),
        # Separable: depthwise 3x3 on 4 channels, then pointwise 4 -> 5.
        (
            (6, 6, 4),
            L.SeparableConv2D(5, 3, padding="same", name="l"),
            36 + 20 + 5,
            36 * 4 * 9 + 36 * 4 * 5,
        ),
        # Transposed, stride 2: each of the 4x4 inputs scatters a 3x3x2 window per input channel.
        (
            (4, 4, 3),
            L.Conv2DTranspose(2, 3, strides=2, padding="same", name="l"),
            56,
            16 * 3 * 9 * 2,
        ),
        # Conv1D, valid: 8 outputs x 4 filters x (3 x 3) window.
        ((10, 3), L.Conv1D(4, 3, name="l"), 40, 8 * 4 * 9),
        # Not counted: BatchNormalization has 4 weights per channel and 0 FLOPs.
        ((8, 8, 3), L.BatchNormalization(name="l"), 12, 0),
    ],
    ids=[
        "conv2d",
        "conv2d_stride",
        "conv2d_groups",
        "dense_3d",
        "depthwise",
        "separable",
        "conv2d_transpose",
        "conv1d",
        "batchnorm",
    ],
)
def test_single_layer_counts(input_shape, layer, params, macs):
    model = _one_layer(input_shape, layer)
    p = kslim.profile(model)
    assert p.params == params == model.count_params()
    assert p.flops == 2 * macs
    assert _row(p, "l").flops == 2 * macs
    out_elements = int(np.prod(model.output.shape[1:]))
    assert _row(p, "l").activation_bytes == 4 * out_elements
    assert _row(p, "x").activation_bytes == 4 * int(np.prod(input_shape))


def test_batch_size_scales_flops_and_memory_but_not_params():
    model = _one_layer((8, 8, 3), L.Conv2D(4, 3, padding="same", name="l"))
    p1, p8 = kslim.profile(model), kslim.profile(model, batch_size=8)
    assert p8.params == p1.params == 112
    assert p8.flops == 8 * p1.flops == 8 * 2 * 6912
    assert p8.activation_bytes == 8 * p1.activation_bytes == 8 * 4 * (192 + 256)
    assert _row(p8, "l").output_shape == (8, 8, 8, 4)


def test_sequential_and_nested_models_are_descended_into():
    inner = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d1")], name="inner")
    x = keras.Input((4,), name="x")
    model = keras.Model(x, L.Dense(2, name="d2")(inner(x)), name="outer")
    p = kslim.profile(model)
    assert [r.name for r in p.layers] == ["x", "inner/d1", "d2"]
    assert p.params == 4 * 3 + 3 + 3 * 2 + 2
    assert p.flops == 2 * (4 * 3 + 3 * 2)

    seq = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d1"), L.Dense(2, name="d2")])
    ps = kslim.profile(seq)
    assert [r.name for r in ps.layers][1:] == ["d1", "d2"]
    assert (ps.params, ps.flops) == (p.params, p.flops)


def test_shared_layer_counts_params_once_and_flops_per_call():
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = L.Dense(3, name="shared")
    model = keras.Model([a, b], L.Add(name="add")([shared(a), shared(b)]))
    p = kslim.profile(model)
    assert [r.name for r in p.layers] == ["a", "b", "shared", "shared", "add"]
    assert [r.params for r in p.layers] == [0, 0, 15, 0, 0]
    assert p.params == 15
    assert p.flops == 2 * 2 * 12


def test_peak_memory_keeps_a_skip_connection_alive():
    # x (40 B) must live until the add; d1 dies after d2: peak = x + d1 + d2 = 120 B.
    x = keras.Input((10,), name="x")
    d2 = L.Dense(10, name="d2")(L.Dense(10, name="d1")(x))
    skip = kslim.profile(keras.Model(x, L.Add(name="add")([x, d2])))
    assert skip.activation_bytes == 4 * 40
    assert skip.peak_activation_bytes == 120
    # Without the skip, each tensor dies after its consumer: peak = 2 x 40 B.
    y = keras.Input((10,), name="y")
    chain = kslim.profile(keras.Model(y, L.Dense(10)(L.Dense(10)(y))))
    assert chain.peak_activation_bytes == 80


def test_ops_in_a_functional_graph_and_float16_outputs():
    x = keras.Input((6,), name="x")
    y = L.Dense(4, dtype="float16", name="half")(x)
    model = keras.Model(x, keras.ops.relu(y))
    p = kslim.profile(model)
    assert _row(p, "half").activation_bytes == 2 * 4
    assert p.layers[-1].params == 0 and p.layers[-1].flops == 0
    assert p.flops == 2 * 24


def test_table_and_dict():
    model = _one_layer((8, 8, 3), L.Conv2D(4, 3, padding="same", name="conv"))
    p = kslim.profile(model)
    assert isinstance(p, Profile)
    table = str(p)
    lines = table.splitlines()
    assert "Layer" in lines[1] and "FLOPs" in lines[1]
    assert any(line.startswith("conv ") and "Conv2D" in line and "13.82K" in line for line in lines)
    assert any(line.startswith("Total") and "112" in line for line in lines)
    assert "trainable 112" in table
    # Human units: 4 significant digits.
    big = kslim.profile(_one_layer((32, 32, 64), L.Conv2D(64, 3, padding="same", name="conv")))
    assert "75.50M" in str(big) and "36.93K" in str(big)
    data = json.loads(json.dumps(p.to_dict()))
    assert data["params"] == 112 and data["flops"] == 13824
    assert data["layers"][1] == {
        "name": "conv",
        "class_name": "Conv2D",
        "output_shape": [1, 8, 8, 4],
        "params": 112,
        "flops": 13824,
        "activation_bytes": 1024,
    }
    assert "112 params" in repr(p)


def test_unbuilt_model_error():
    with pytest.raises(ValueError, match="not built.*keras.Input"):
        kslim.profile(keras.Sequential([L.Dense(2)], name="lazy"))


def test_subclassed_model_error_points_to_functional_api():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__(name="sub")
            self.dense = L.Dense(2)

        def call(self, x):
            return self.dense(x)

    model = Sub()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(ValueError, match="'sub'.*subclassed.*functional API"):
        kslim.profile(model)


def test_bad_arguments():
    with pytest.raises(TypeError, match="keras.Model, got Dense"):
        kslim.profile(L.Dense(2))
    model = _one_layer((4,), L.Dense(2))
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        kslim.profile(model, batch_size=0)
    conv = _one_layer((None, None, 3), L.Conv2D(2, 3, name="c"))
    with pytest.raises(ValueError, match=r"layer 'x'.*\(None, None, None, 3\).*fixed input shape"):
        kslim.profile(conv)
