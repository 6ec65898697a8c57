"""The pruning engine: exactness on every supported architecture, budgets, plans, errors."""

import json

import keras
import numpy as np
import pytest

import kslim
from kslim.sparsity.factors import scaling_factors

from kslim.testing import archs
from kslim.testing.exactness import inputs as _inputs
from kslim.testing.exactness import masked_output
from kslim.testing.exactness import rel_err as _rel_err
from kslim.testing.exactness import sparsify

L = keras.layers


@pytest.mark.parametrize("name", sorted(archs.ALL))
def test_pruned_model_computes_what_the_masked_model_computed(name):
    # layer_zoo ties four branches: only positions zero in all four get pruned.
    model = sparsify(archs.ALL[name](), frac=0.6 if name == "layer_zoo" else 0.35)
    x = _inputs(model)
    before = model(x, training=False)
    weights = [w.copy() for w in model.get_weights()]
    plan = kslim.plan(model, threshold=1e-6)
    slim = kslim.prune(model, plan=plan)
    assert _rel_err(before, slim(x, training=False)) <= 1e-5
    assert plan.factors[1] >= 0.15 * plan.factors[0], "the test must prune a real share of channels"
    # Compensation may give a bias-free layer a bias; the plan counts the plain rebuild.
    plain = kslim.prune(model, plan=plan, compensate=False)
    assert plain.count_params() == plan.params[1] < model.count_params()
    assert plan.params[1] <= slim.count_params() <= 1.001 * plan.params[1]
    assert kslim.profile(slim).flops == plan.flops[1] < kslim.profile(model).flops
    for a, b in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(a, b)  # the input model is never mutated
    names = {layer.name for layer in model.layers}
    assert {layer.name for layer in slim.layers} - names <= {
        layer.name for layer in slim.layers if isinstance(layer, kslim.layers.ChannelSelect)
    }


@pytest.mark.parametrize("name", kslim.models.list_models())
def test_every_zoo_model_prunes_exactly(name):
    model = kslim.models.get(name)
    if not scaling_factors(model):  # LeNets have no BN: Yang et al.'s channel masks
        model = kslim.add_channel_masks(model)
    model = sparsify(model)
    x = _inputs(model, n=2)
    before = model(x, training=False)
    slim = kslim.prune(model, threshold=1e-6)
    assert _rel_err(before, slim(x, training=False)) <= 1e-5
    assert kslim.profile(slim).params < 0.9 * kslim.profile(model).params


@pytest.mark.parametrize("name", ["vgg", "resnet", "preact_resnet", "densenet", "mobilenet", "se_net", "mlp",
                                  "sequential", "keras_resnet50"])
def test_compensation_folds_the_constant_of_pruned_channels(name):
    # Issue 12, item 6: with beta kept the fold was exact only away from zero-padded borders (ResNet50:
    # 1.3e-2 relative error); a BorderBias after each same-padded convolution makes it exact there too.
    model = sparsify(archs.ALL[name](), beta_zero=False)
    x = _inputs(model)
    before = model(x, training=False)
    plan = kslim.plan(model, threshold=1e-6)
    slim = kslim.prune(model, plan=plan)
    with_comp = _rel_err(before, slim(x, training=False))
    interior = _rel_err(before, kslim.prune(model, plan=plan, compensate="interior")(x, training=False))
    without = _rel_err(before, kslim.prune(model, plan=plan, compensate=False)(x, training=False))
    assert with_comp <= interior and interior < without / 5
    if name != "mobilenet":  # a constant through a same-padded depthwise conv is only folded in the interior
        assert with_comp <= 1e-5, (with_comp, interior)
    borders = [layer for layer in slim.layers if isinstance(layer, kslim.layers.BorderBias)]
    assert bool(borders) == (name != "mlp"), borders  # mobilenet: its SeparableConv2D
    assert all(not layer.trainable_weights for layer in borders)


def test_border_bias_saves_exports_and_a_second_pass_adds_to_it(tmp_path):
    model = sparsify(archs.resnet(), beta_zero=False)
    x = _inputs(model)
    slim = kslim.prune(model, threshold=1e-6)
    n_borders = sum(isinstance(layer, kslim.layers.BorderBias) for layer in slim.layers)
    slim.save(tmp_path / "slim.keras")
    again = keras.saving.load_model(tmp_path / "slim.keras")
    np.testing.assert_allclose(again(x, training=False), slim(x, training=False), rtol=1e-6, atol=1e-6)
    report = kslim.export(slim, tmp_path / "slim.tflite", representative_data=x)  # checks parity itself
    assert report.max_abs_diff <= 1e-4 * report.output_scale
    # The file adds each BorderBias as a constant image: no convolution of ones runs per call.
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "slim.tflite"))
    convs = [op for op in interpreter._get_ops_details() if op["op_name"] == "CONV_2D"]
    assert n_borders and len(convs) == sum(isinstance(layer, L.Conv2D) for layer in slim.layers)
    second = sparsify(slim, beta_zero=False, seed=3)  # another pass: new zeros, betas kept
    slimmer = kslim.prune(second, threshold=1e-6)
    assert _rel_err(second(x, training=False), slimmer(x, training=False)) <= 1e-5
    borders = [layer for layer in slimmer.layers if isinstance(layer, kslim.layers.BorderBias)]
    assert len(borders) >= n_borders  # each earlier one kept, added to; none reads another
    assert not any(isinstance(b.input._keras_history[0], kslim.layers.BorderBias) for b in borders)
    with pytest.raises(ValueError, match="compensate='yes' is not supported"):
        kslim.prune(model, threshold=1e-6, compensate="yes")


def test_preactivation_stream_stays_whole_and_uses_channel_selection():
    model = sparsify(archs.preact_resnet())
    slim = kslim.prune(model, threshold=1e-6)
    selects = [layer for layer in slim.layers if isinstance(layer, kslim.layers.ChannelSelect)]
    assert selects and all(layer.name.endswith("_bn1_select") or layer.name == "final_bn_select" for layer in selects)
    for layer_name in ("stem", "s0b0_conv3", "s0b1_conv3", "s0b0_down"):
        assert slim.get_layer(layer_name).filters == model.get_layer(layer_name).filters


def _zero_factors(model, positions):
    """Zeroes gamma and beta of the named BNs at the given channel positions."""
    for name, where in positions.items():
        bn = model.get_layer(name)
        gamma, beta, mean, var = bn.get_weights()
        gamma[list(where)], beta[list(where)] = 0.0, 0.0
        bn.set_weights([gamma, beta, mean, var])


def test_a_dense_stream_channel_that_every_reader_prunes_is_not_computed():
    # d0l1_conv's 6 channels sit at 18-23 of the stream that d0l2_bn and trans_bn read (after the stem's 12
    # and d0l0's 6). Its channel 2 (stream position 20), zeroed in both readers, goes at d0l1_conv; its
    # channel 4 (22), zeroed in d0l2_bn only, is still computed for trans_bn and selected away by d0l2_bn.
    model = sparsify(archs.densenet(), frac=0.0)  # random BN statistics, no zero factor
    _zero_factors(model, {"d0l2_bn": [20, 22], "trans_bn": [20]})
    plan = kslim.plan(model, threshold=1e-6)
    assert sorted(plan.layers["d0l1_conv"]["out"]) == [0, 1, 3, 4, 5]  # in the stream's new order
    assert plan.layers["d0l2_bn"]["zeroed"] == [20, 22] and len(plan.layers["d0l2_bn"]["select"]) == 22
    assert plan.layers["trans_bn"]["select"] is None  # it reads every channel the stream still carries
    slim = kslim.prune(model, plan=plan)
    assert slim.get_layer("d0l1_conv").filters == 5 and slim.get_layer("trans_conv").filters == 30
    x = _inputs(model)
    assert _rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    assert kslim.profile(slim).flops == plan.flops[1]
    again = kslim.prune(model, plan=kslim.Plan.from_json(plan.to_json()))
    np.testing.assert_allclose(again(x, training=False), slim(x, training=False), rtol=0, atol=0)


def test_a_plan_for_litert_removes_a_dense_layer_that_every_reader_prunes_whole(tmp_path):
    # d0l1's 6 channels (stream positions 18-23) are zeroed in both their readers. A plan for FLOPs keeps
    # d0l1_conv at min_channels=1, a channel no one reads; a plan for LiteRT, where a layer narrower than the
    # tile costs as much as a whole tile, removes it with the BN and ReLU that only feed it, and d0l1_cat
    # passes its other input on. Tiles given, so nothing is timed.
    model = sparsify(archs.densenet(), frac=0.0)
    _zero_factors(model, {"d0l2_bn": range(18, 24), "trans_bn": range(18, 24)})
    assert kslim.plan(model, threshold=1e-6).layers["d0l1_conv"]["channels"] == [6, 1]
    plan = kslim.plan(model, threshold=1e-6, runtime="litert", round_to=16, round_inputs_to=1)
    assert plan.layers["d0l1_conv"]["channels"] == [6, 0] and plan.layers["d0l1_bn"]["channels"] == [18, 0]
    assert plan.layers["d0l1_conv"]["why"].startswith("removed: every reader prunes")
    assert plan.layers["d0l1_bn"]["zeroed"] == list(range(18))  # the masked model zeroes what goes
    slim = kslim.prune(model, plan=plan)
    names = {layer.name for layer in slim.layers}
    assert not names & {"d0l1_bn", "d0l1_relu", "d0l1_conv", "d0l1_cat"}, names
    assert slim.get_layer("d0l2_bn").input.shape[-1] == 18 and slim.get_layer("trans_conv").filters == 30
    x = _inputs(model)
    assert _rel_err(masked_output(model, plan, x), slim(x, training=False)) <= 1e-5
    assert kslim.profile(slim).flops == plan.flops[1]
    again = kslim.prune(model, plan=kslim.Plan.from_json(plan.to_json()))
    np.testing.assert_allclose(again(x, training=False), slim(x, training=False), rtol=0, atol=0)
    report = kslim.export(slim, tmp_path / "slim.tflite")  # checks parity itself
    assert "GATHER" not in report.ops and not report.flops_added
    # All of block 0's layers go (trans_bn prunes every channel they add, 12-29), and with d0l2 d0l2_bn, every
    # factor of which is pruned: no floor keeps a channel of a BN that is removed, which would bring back the
    # largest of its factors, d0l1's channels here (1e-8), and d0l1 with them.
    model = sparsify(archs.densenet(), frac=0.0)
    _zero_factors(model, {"d0l1_bn": range(12, 18), "d0l2_bn": range(24), "trans_bn": range(12, 30)})
    bn = model.get_layer("d0l2_bn")
    gamma, *rest = bn.get_weights()
    gamma[18:24] = 1e-8
    bn.set_weights([gamma, *rest])
    plan = kslim.plan(model, threshold=1e-6, runtime="litert", round_to=16, round_inputs_to=1)
    assert all(plan.layers[f"d0l{i}_conv"]["channels"] == [6, 0] for i in range(3)), plan.summary(print_fn=False)
    slim = kslim.prune(model, plan=plan)
    assert _rel_err(masked_output(model, plan, x), slim(x, training=False)) <= 1e-5


def test_a_plan_for_litert_removes_narrow_dense_layers_whole_on_densenet121():
    # keras.applications DenseNet121 at the int8 tiles of an AMX CPU (64; given, so nothing is timed): every
    # growth layer (32 channels) is narrower than a tile, so the plan keeps each whole or removes it whole,
    # ranked by its readers' mean |factor|; a removed layer takes its bottleneck with it.
    model = sparsify(archs.keras_densenet121(), shared=0.0)
    plan = kslim.plan(model, flops_target=0.6, runtime="litert", round_to=64, round_inputs_to=64)
    growth = [name for name in plan.layers if name.endswith("_2_conv")]
    removed = [name for name in growth if plan.layers[name]["channels"][1] == 0]
    assert removed and all(plan.layers[name]["channels"] in ([32, 32], [32, 0]) for name in growth)
    slim = kslim.prune(model, plan=plan)
    names = {layer.name for layer in slim.layers}
    for name in removed:
        block = name[: -len("_2_conv")]
        assert not names & {f"{block}_0_bn", f"{block}_1_conv", f"{block}_1_bn", name, f"{block}_concat"}
    assert plan.flops[1] <= 0.6 * plan.flops[0] and kslim.profile(slim).flops == plan.flops[1]
    x = _inputs(model, n=2)
    assert _rel_err(masked_output(model, plan, x), slim(x, training=False)) <= 1e-5


def test_a_residual_stream_narrows_where_every_reader_prunes_unless_a_layer_reads_it_directly():
    # Same-width BNs share their zero pattern: the second stage's stream, read only by s1b1_bn1 and
    # final_bn, loses the channels both prune at every producer of the sum (s1b0_down, the conv3s) and
    # needs no selection; the first stage's, which the projection s1b0_down reads without a BN, stays whole.
    model = sparsify(archs.preact_resnet(), shared=1.0)
    dead = int(np.sum(keras.ops.convert_to_numpy(model.get_layer("final_bn").gamma) == 0))
    assert 0 < dead < 64
    plan = kslim.plan(model, threshold=1e-6)
    slim = kslim.prune(model, plan=plan)
    for name in ("s1b0_down", "s1b0_conv3", "s1b1_conv3"):
        assert slim.get_layer(name).filters == 64 - dead, name
    for name in ("stem", "s0b0_down", "s0b0_conv3", "s0b1_conv3"):
        assert slim.get_layer(name).filters == model.get_layer(name).filters, name
    selects = {layer.name for layer in slim.layers if isinstance(layer, kslim.layers.ChannelSelect)}
    assert selects == {"s0b0_bn1_select", "s0b1_bn1_select", "s1b0_bn1_select"}, selects
    x = _inputs(model)
    assert _rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5


def test_ratio_prunes_that_share_of_channels_by_one_global_threshold():
    model = archs.vgg()
    rng = np.random.default_rng(0)
    for layer, variable in scaling_factors(model):
        variable.assign(rng.uniform(0.01, 1.0, variable.shape).astype("float32"))
    plan = kslim.plan(model, ratio=0.5)
    gammas = np.concatenate([np.abs(v.numpy()) for _, v in scaling_factors(model)])
    assert plan.factors == [gammas.size, int(round(0.5 * gammas.size))]
    assert np.sum(gammas < plan.threshold) == plan.factors[1]


def test_ratio_prunes_by_rank_when_many_factors_are_exactly_zero():
    model = sparsify(archs.vgg(), frac=0.5)  # proximal training leaves exact zeros: ties
    zeros = sum(int(np.sum(v.numpy() == 0)) for _, v in scaling_factors(model))
    total = sum(v.shape[0] for _, v in scaling_factors(model))
    assert zeros > 0.3 * total
    plan = kslim.plan(model, ratio=0.3)
    assert plan.factors[1] == int(round(0.3 * total))


def test_a_ratio_that_would_empty_a_layer_keeps_min_channels():
    model = archs.vgg()
    layer, variable = scaling_factors(model)[1]
    variable.assign(np.zeros(variable.shape, "float32"))  # this layer alone would be emptied
    slim = kslim.prune(model, ratio=0.3)
    assert slim.get_layer("block1_conv").filters == 1
    slim = kslim.prune(model, ratio=0.3, min_channels=4)
    assert slim.get_layer("block1_conv").filters == 4
    slim = kslim.prune(model, ratio=0.95, min_channels=2)
    assert min(l.filters for l in slim.layers if isinstance(l, L.Conv2D)) >= 2


def test_round_to_and_max_layer_ratio():
    model = sparsify(archs.vgg(), frac=0.6)
    slim = kslim.prune(model, threshold=1e-6, round_to=8)
    for layer in slim.layers:
        if isinstance(layer, L.Conv2D):
            full = model.get_layer(layer.name).filters
            assert layer.filters % 8 == 0 or layer.filters == full
    # A layer no wider than the multiple is not rounded (a DenseNet's 12-channel growth layers with the
    # channel tile 16 would otherwise never be pruned).
    widest = max(l.filters for l in model.layers if isinstance(l, L.Conv2D))
    wide = kslim.prune(model, threshold=1e-6, round_to=widest)
    assert wide.count_params() == kslim.prune(model, threshold=1e-6).count_params()
    # round_inputs_to rounds what a layer's readers take in, so narrow layers too: with the widest
    # layer's width as the input tile every layer keeps all its channels (int8 convolutions on an AMX
    # CPU cost the same for 8 to 64 input channels).
    tiled = kslim.prune(model, threshold=1e-6, round_to=widest, round_inputs_to=8)
    for layer in tiled.layers:
        if isinstance(layer, L.Conv2D):
            full = model.get_layer(layer.name).filters
            assert layer.filters % 8 == 0 or layer.filters == full
    assert tiled.count_params() > wide.count_params()
    whole = kslim.plan(model, threshold=1e-6, round_inputs_to=widest)
    assert whole.flops[1] == whole.flops[0]
    assert any(f"round_inputs_to={widest}" in rec["why"] for rec in whole.layers.values()), whole.layers
    x = _inputs(model)
    assert _rel_err(model(x, training=False), tiled(x, training=False)) <= 1e-5
    slim = kslim.prune(model, threshold=1e-6, max_layer_ratio=0.5)
    for layer in slim.layers:
        if isinstance(layer, L.Conv2D):
            assert layer.filters >= model.get_layer(layer.name).filters / 2


def test_a_plan_for_litert_keeps_whole_the_layers_no_wider_than_the_tile():
    # On LiteRT a convolution's outputs cost whole tiles (1 to 16 outputs of a 3x3 convolution took the
    # same time, measured on LiteRT with XNNPACK): cutting a 16-channel layer to 5 removes FLOPs but no
    # time. A plan for LiteRT rounds such a layer too: it keeps all its channels. Tiles given, so that
    # nothing is measured.
    model = sparsify(archs.vgg(), frac=0.6)
    tiles = dict(round_to=32, round_inputs_to=1, selections="all")
    flops = kslim.plan(model, threshold=1e-6, **tiles)
    litert = kslim.plan(model, threshold=1e-6, runtime="litert", **tiles)
    narrow = [name for name, rec in flops.layers.items()
              if rec["class"] == "Conv2D" and rec["channels"][1] < rec["channels"][0] <= 32]
    assert narrow, flops.layers
    for name in narrow:
        rec = litert.layers[name]
        assert rec["channels"][1] == rec["channels"][0] and "kept by round_to=32" in rec["why"], (name, rec)
    for name, rec in litert.layers.items():  # wider layers are rounded as before
        if rec["class"] == "Conv2D" and rec["channels"][0] > 32:
            assert rec["channels"][1] % 32 == 0 or rec["channels"][1] == rec["channels"][0], (name, rec)
    assert flops.flops[1] < litert.flops[1] < litert.flops[0]
    x = _inputs(model)
    assert _rel_err(model(x, training=False), kslim.prune(model, plan=litert)(x, training=False)) <= 1e-5


def test_the_plan_says_when_a_per_layer_floor_keeps_channels_below_the_threshold():
    # Issue 14: two passes at ratio 0.5 pruned 47.6% and 43.7% and the plan never said why.
    model = sparsify(archs.vgg(), frac=0.6)
    plan = kslim.plan(model, threshold=1e-6, max_layer_ratio=0.5)
    capped = {name: rec for name, rec in plan.layers.items()
              if "kept by max_layer_ratio=0.5" in rec["why"] and rec["class"] == "BatchNormalization"}
    assert capped, {n: r["why"] for n, r in plan.layers.items()}
    for name, rec in capped.items():
        full, kept = rec["channels"]
        assert kept == (full + 1) // 2, name
        below = int(np.sum(np.abs(model.get_layer(name).get_weights()[0]) < 1e-6))
        assert f"; {below - (full - kept)} more below it kept by max_layer_ratio=0.5" in rec["why"], rec["why"]
    reason = "below the threshold, kept by the per-layer floors (max_layer_ratio=0.5)"
    assert plan.kept_reasons[reason] > 0
    assert f"channels: {reason}" in plan.summary(print_fn=False)
    assert not any("kept by" in r["why"] for r in kslim.plan(model, threshold=1e-6).layers.values())


def test_exclude_keeps_a_layer_whole():
    model = sparsify(archs.vgg())
    slim = kslim.prune(model, threshold=1e-6, exclude=["block0_conv"])
    assert slim.get_layer("block0_conv").filters == 16
    assert slim.get_layer("block1_conv").filters < 16
    with pytest.raises(ValueError, match="'nope'"):
        kslim.prune(model, ratio=0.5, exclude=["nope"])


def test_flops_and_params_targets_land_within_two_percent():
    model = archs.vgg((32, 32, 3))
    rng = np.random.default_rng(0)
    for _, variable in scaling_factors(model):
        variable.assign(rng.uniform(0.01, 1.0, variable.shape).astype("float32"))
    full = kslim.profile(model)
    for target in (0.5, 0.3):
        plan = kslim.plan(model, flops_target=target)
        assert abs(plan.flops[1] / (target * full.flops) - 1) <= 0.02
        assert kslim.profile(kslim.prune(model, plan=plan)).flops == plan.flops[1]
    plan = kslim.plan(model, params_target=0.5)
    assert abs(plan.params[1] / (0.5 * full.params) - 1) <= 0.02
    with pytest.raises(ValueError, match="cannot be reached"):
        kslim.plan(model, flops_target=1e-6)


def test_plan_survives_a_json_round_trip_and_reapplies_exactly():
    model = sparsify(archs.densenet(), beta_zero=False)
    plan = kslim.plan(model, threshold=1e-6)
    text = plan.to_json()
    again = kslim.Plan.from_json(text)
    assert json.loads(again.to_json()) == json.loads(text)
    x = _inputs(model)
    np.testing.assert_allclose(
        kslim.prune(model, plan=again)(x, training=False),
        kslim.prune(model, plan=plan)(x, training=False),
        rtol=0, atol=1e-6,
    )
    summary = plan.summary(print_fn=False)
    assert "d0l1_bn" in summary and "->" in summary and "FLOPs" in summary


def test_a_plan_for_another_model_is_refused():
    plan = kslim.plan(sparsify(archs.vgg()), threshold=1e-6)
    with pytest.raises(ValueError, match="does not have|different model"):
        kslim.prune(archs.resnet(), plan=plan)
    data = json.loads(plan.to_json())
    data["layers"]["block0_bn"]["out"] = [0]
    with pytest.raises(ValueError, match="block0_"):
        kslim.prune(sparsify(archs.vgg()), plan=kslim.Plan.from_json(json.dumps(data)))
    with pytest.raises(ValueError, match="Not a kslim plan"):
        kslim.Plan.from_json("{}")


def test_a_plan_whose_layers_another_model_also_has_is_refused():
    model = sparsify(archs.vgg())
    plan = kslim.plan(model, threshold=1e-6)
    # The same layers, same widths, and one more layer after them: every name of the plan is found.
    bigger = keras.Model(model.inputs, L.Dense(7, name="extra")(model.outputs[0]))
    with pytest.raises(ValueError, match=r"The plan was made for a model of [\d,]+ parameters .* \('vgg'\), but "
                                         r"model '.*' has [\d,]+ and [\d,]+; make a new plan for this model"):
        kslim.prune(bigger, plan=plan)
    data = json.loads(plan.to_json())
    data["layers"]["block0_bn"]["class"] = "LayerNormalization"
    with pytest.raises(ValueError, match=r"The plan's layer 'block0_bn' is a LayerNormalization, but model 'vgg' "
                                         r"has a BatchNormalization of that name"):
        kslim.prune(model, plan=kslim.Plan.from_json(json.dumps(data)))


def test_barriers_keep_their_channels_and_say_why():
    x = inp = keras.Input((8, 8, 3))
    x = L.Conv2D(8, 3, padding="same", name="conv_a")(x)
    x = L.BatchNormalization(name="bn_a")(x)
    x = L.Lambda(lambda t: t * 2.0, name="double")(x)
    x = L.Conv2D(8, 3, padding="same", name="conv_b")(x)
    x = L.BatchNormalization(name="bn_b")(x)
    x = L.LayerNormalization(name="ln")(x)
    x = L.GlobalAveragePooling2D()(x)
    model = sparsify(keras.Model(inp, L.Dense(3, name="out")(x)), frac=0.5)
    plan = kslim.plan(model, threshold=1e-6)
    reasons = " ".join(plan.kept_reasons)
    assert "double" in reasons and "ln" in reasons
    slim = kslim.prune(model, plan=plan)
    assert slim.get_layer("conv_a").filters == 8 and slim.get_layer("conv_b").filters == 8


def test_channel_masks_for_layers_without_bn_fold_away():
    x = inp = keras.Input((28, 28, 1))
    x = L.Conv2D(6, 5, activation="relu", name="c1")(x)
    x = L.MaxPooling2D(name="p1")(x)
    x = L.Flatten(name="flat")(x)
    x = L.Dense(20, activation="relu", name="d1")(x)
    model = keras.Model(inp, L.Dense(10, name="d2")(x))
    masked = kslim.add_channel_masks(model)
    assert [l.name for l in masked.layers if isinstance(l, kslim.layers.ChannelMask)] == ["c1_mask", "d1_mask"]
    x = _inputs(model)
    np.testing.assert_allclose(masked(x), model(x), atol=1e-6)
    sparsify(masked, frac=0.5)
    slim = kslim.prune(masked, threshold=1e-6)
    assert not any(isinstance(l, kslim.layers.ChannelMask) for l in slim.layers)
    assert _rel_err(masked(x), slim(x)) <= 1e-5
    assert slim.count_params() < model.count_params()


def test_folded_mask_gain_is_spread_evenly_over_a_chain_of_layers():
    # A mask-trained LeNet leaves most of its gain in small masks; folded, they would make
    # fc1's kernel tens of times smaller than its neighbours', and SGD diverges in fine-tuning.
    model = kslim.models.get("lenet5_caffe", channel_masks=True)
    rng = np.random.default_rng(0)
    ranges = {"conv1_mask": (0.5, 2), "conv2_mask": (0.05, 0.3), "fc1_mask": (1e-3, 0.05)}
    for name, (low, high) in ranges.items():
        layer = model.get_layer(name)
        n = layer.mask.shape[0]
        mask = rng.uniform(low, high, n) * rng.choice([-1, 1], n)
        mask[rng.random(mask.size) < 0.5] = 0.0
        layer.set_weights([mask.astype("float32")])
    x = _inputs(model)
    before = model(x, training=False)
    plan = kslim.plan(model, threshold=1e-6)
    plain = kslim.prune(model, plan=plan, rebalance=False)
    slim = kslim.prune(model, plan=plan)
    assert _rel_err(before, plain(x, training=False)) <= 1e-5
    assert _rel_err(before, slim(x, training=False)) <= 1e-5

    # A layer's gain: ||its kernel|| over ||the same kept slice of the unmasked kernel||.
    for name in ("conv1_mask", "conv2_mask", "fc1_mask"):
        layer = model.get_layer(name)
        layer.set_weights([(layer.mask.numpy() != 0).astype("float32")])
    unmasked = kslim.prune(model, plan=plan, rebalance=False)
    folded, spread = [], []
    for name in ("conv1", "conv2", "fc1", "classifier"):
        norm = np.linalg.norm(unmasked.get_layer(name).kernel.numpy())
        folded.append(np.linalg.norm(plain.get_layer(name).kernel.numpy()) / norm)
        spread.append(np.linalg.norm(slim.get_layer(name).kernel.numpy()) / norm)
    assert max(folded) / min(folded) > 20  # the plain fold is badly unbalanced
    np.testing.assert_allclose(spread, np.exp(np.mean(np.log(folded))), rtol=1e-4)


def test_rebalancing_stops_where_scaling_would_change_the_output():
    # A sigmoid is not positively homogeneous: the scale of d1 cannot move into d2.
    inp = keras.Input((12,))
    x = L.Dense(16, name="d1")(inp)
    x = kslim.layers.ChannelMask(name="d1_mask")(x)
    x = L.Activation("sigmoid", name="sig")(x)
    x = L.Dense(16, name="d2")(x)
    x = kslim.layers.ChannelMask(name="d2_mask")(x)
    x = L.ReLU(name="relu")(x)
    model = keras.Model(inp, L.Dense(3, name="out")(x))
    for name in ("d1_mask", "d2_mask"):
        mask = np.full(16, 0.01, "float32")
        mask[::2] = 0.0
        model.get_layer(name).set_weights([mask])
    data = _inputs(model)
    slim = kslim.prune(model, threshold=1e-6)
    plain = kslim.prune(model, threshold=1e-6, rebalance=False)
    assert _rel_err(model(data), slim(data)) <= 1e-5

    def kernel_ratio(name):
        kernels = [np.asarray(m.get_layer(name).kernel.numpy()) for m in (slim, plain)]
        return np.linalg.norm(kernels[0]) / np.linalg.norm(kernels[1])

    assert kernel_ratio("d1") == 1.0
    # d2 -> ReLU -> out is a chain: its gain 0.01 is split into 0.1 for d2 and 0.1 for out.
    np.testing.assert_allclose([kernel_ratio("d2"), kernel_ratio("out")], [10.0, 0.1], rtol=1e-5)


def test_rebalancing_leaves_a_shared_layer_alone():
    inp = keras.Input((12,))
    x = kslim.layers.ChannelMask(name="d1_mask")(L.Dense(16, name="d1")(inp))
    shared = L.Dense(16, name="shared")
    x = shared(shared(L.ReLU(name="relu")(x)))  # its kernel serves two calls
    model = keras.Model(inp, L.Dense(3, name="out")(x))
    model.get_layer("d1_mask").set_weights([np.full(16, 0.01, "float32")])
    data = _inputs(model)
    slim = kslim.prune(model, threshold=1e-6)
    plain = kslim.prune(model, threshold=1e-6, rebalance=False)
    assert _rel_err(model(data), slim(data)) <= 1e-5
    for name in ("d1", "shared", "out"):
        kernels = [m.get_layer(name).kernel.numpy() for m in (slim, plain)]
        np.testing.assert_array_equal(*kernels)


def test_pruned_model_saves_and_loads_with_safe_mode(tmp_path):
    model = sparsify(archs.preact_resnet())
    slim = kslim.prune(model, threshold=1e-6)
    path = tmp_path / "slim.keras"
    slim.save(path)
    loaded = keras.models.load_model(path)
    x = _inputs(model)
    np.testing.assert_allclose(loaded(x, training=False), slim(x, training=False), atol=1e-6)


def test_pruned_layers_keep_their_names_initializers_and_trainable_flags():
    model = sparsify(archs.resnet())
    model.get_layer("stem_conv").kernel_initializer = keras.initializers.HeNormal(seed=3)
    model.get_layer("s0b0a_conv").trainable = False
    slim = kslim.prune(model, threshold=1e-6)
    assert [layer.name for layer in slim.layers] == [layer.name for layer in model.layers]
    assert slim.name == model.name
    for layer in model.layers:
        new = slim.get_layer(layer.name).get_config()
        old = layer.get_config()
        for key in old:
            if key.endswith("_initializer") or key in ("trainable", "activation", "use_bias"):
                assert new[key] == old[key], (layer.name, key)
    # the rebuild draws no random weights, but a re-initialised copy does
    fresh = keras.models.clone_model(slim)
    assert float(np.std(keras.ops.convert_to_numpy(fresh.get_layer("stem_conv").kernel))) > 0


def test_the_pruned_model_fine_tunes_without_the_penalty_unless_asked():
    model = kslim.attach(sparsify(archs.vgg()), lam=1e-3)
    slim = kslim.prune(model, threshold=1e-6)
    assert not [v for _, v in kslim.scaling_factors(slim) if v.regularizer is not None]
    assert not slim.losses
    kept = kslim.prune(model, threshold=1e-6, keep_penalty=True)
    assert all(v.regularizer is not None for _, v in kslim.scaling_factors(kept))
    assert all(v.regularizer is not None for _, v in kslim.scaling_factors(model))  # untouched


def test_a_prune_that_leaves_a_layer_only_its_floor_warns():
    model = archs.vgg()
    rng = np.random.default_rng(0)
    for layer, variable in kslim.scaling_factors(model):  # block6 is far weaker than the rest
        scale = 1e-3 if layer.name == "block6_bn" else 1.0
        variable.assign((scale * rng.uniform(0.5, 1.0, variable.shape[0])).astype("float32"))
    with pytest.warns(UserWarning, match=r"cuts 1 layer\(s\) down to min_channels=1: 'block6_conv' 64 -> 1\."):
        kslim.plan(model, ratio=0.33)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        kslim.plan(model, ratio=0.33, min_channels=16)  # a floor of a quarter is not degenerate
        kslim.plan(model, ratio=0.2)


def test_bad_arguments_get_clear_errors():
    model = archs.vgg()
    with pytest.raises(ValueError, match=r"ratio=1.5 must be in \[0, 1\)"):
        kslim.prune(model, ratio=1.5)
    with pytest.raises(ValueError, match="exactly one of"):
        kslim.prune(model, ratio=0.5, threshold=0.1)
    with pytest.raises(ValueError, match="min_channels=0"):
        kslim.prune(model, ratio=0.5, min_channels=0)
    with pytest.raises(TypeError, match="kslim.Plan"):
        kslim.prune(model, plan={"layers": {}})

    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = L.Conv2D(4, 3)
            self.bn = L.BatchNormalization()

        def call(self, x):
            return self.bn(self.conv(x))

    sub = Sub()
    sub(np.zeros((1, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="subclassed model.*functional API"):
        kslim.prune(sub, ratio=0.5)
    no_bn = keras.Sequential([keras.Input((4,)), L.Dense(3)])
    with pytest.raises(ValueError, match="add_channel_masks"):
        kslim.prune(no_bn, ratio=0.5)


def _transfer_model(wrap):
    """The usual Keras transfer-learning model: a keras.applications backbone called as one layer."""
    base = keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None, alpha=0.35)
    if wrap == "sequential":
        return keras.Sequential([keras.Input((32, 32, 3)), base, L.GlobalAveragePooling2D(), L.Dense(10)],
                                name="transfer")
    inp = keras.Input((32, 32, 3))
    x = base(inp)
    if wrap == "twice":  # the backbone inside another functional model, inside the user's
        inner = keras.Model(inp, L.GlobalAveragePooling2D()(x), name="features")
        inp = keras.Input((32, 32, 3))
        x = inner(inp)
    else:
        x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10, name="head")(x), name="transfer")


@pytest.mark.parametrize("wrap", ["functional", "sequential", "twice"])
def test_a_nested_backbone_is_pruned_through_exactly(wrap):
    # Issue 12: this raised "no channel scaling factors to score" for a model holding 52 BNs.
    model = sparsify(_transfer_model(wrap), frac=0.4)
    base = next(layer for layer in model._flatten_layers(include_self=False, recursive=True)
                if layer.name.startswith("mobilenetv2"))
    nodes_before = len(base.get_layer("block_1_expand")._inbound_nodes)
    plan = kslim.plan(model, threshold=1e-8)
    slim = kslim.prune(model, plan=plan)
    x = _inputs(model)
    assert _rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    assert kslim.profile(slim).params < 0.7 * kslim.profile(model).params
    assert slim.get_layer("block_1_expand").filters < base.get_layer("block_1_expand").filters
    assert not any(isinstance(layer, keras.Model) for layer in slim.layers)  # flat, as documented
    assert len(base.get_layer("block_1_expand")._inbound_nodes) == nodes_before  # the user's model untouched
    assert "block_1_expand_BN" in plan.layers


def _inception_style():
    """BatchNormalization(scale=False) after every convolution (InceptionV3), an Inception-ResNet scaled
    sum (keras.applications' CustomScaleLayer), ConvNeXt's LayerScale and a one-group-per-channel conv."""
    from keras.src.applications.convnext import LayerScale
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    def conv_bn(x, filters, name, kernel=3):
        x = L.Conv2D(filters, kernel, padding="same", use_bias=False, name=name)(x)
        x = L.BatchNormalization(scale=False, momentum=0.9, name=name + "_bn")(x)
        return L.Activation("relu", name=name + "_ac")(x)

    x = inp = keras.Input((12, 12, 3))
    x = conv_bn(x, 16, "stem")
    branches = [conv_bn(x, 8, "b0", 1), conv_bn(conv_bn(x, 8, "b1a", 1), 8, "b1b")]
    up = L.Conv2D(16, 1, name="up")(L.Concatenate(name="mixed")(branches))
    x = L.Activation("relu", name="res_ac")(CustomScaleLayer(0.2, name="res")([x, up]))
    y = L.Conv2D(16, 3, padding="same", groups=16, name="dw")(x)
    y = L.Dense(24, name="pw1")(y)
    y = L.BatchNormalization(scale=False, momentum=0.9, name="pw1_bn")(y)
    y = L.Dense(16, name="pw2")(L.ReLU(name="pw1_relu")(y))
    x = L.Add(name="add")([x, LayerScale(0.5, 16, name="layer_scale")(y)])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(10, name="logits")(x), name="inception_style")


def test_unscaled_bn_custom_scale_layerscale_and_depthwise_groups_prune_exactly(tmp_path):
    # Issue 12, items 4 and 5: CustomScaleLayer and LayerScale were barriers, a conv with one group per
    # channel too, and add_channel_masks put the mask *before* a BN(scale=False), where it ranks nothing.
    masked = kslim.add_channel_masks(_inception_style())
    mask_input = {layer.name: layer.input._keras_history[0].name
                  for layer in masked.layers if isinstance(layer, kslim.layers.ChannelMask)}
    assert mask_input["stem_mask"] == "stem_bn" and mask_input["pw1_mask"] == "pw1_bn"
    model = sparsify(masked, frac=0.4)
    plan = kslim.plan(model, threshold=1e-6)
    assert not plan.kept_reasons or not any(w in " ".join(plan.kept_reasons)
                                            for w in ("res", "layer_scale", "dw"))
    slim = kslim.prune(model, plan=plan)
    x = _inputs(model)
    assert _rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    assert not any(isinstance(layer, kslim.layers.ChannelMask) for layer in slim.layers)
    stem_bn = slim.get_layer("stem_bn")
    assert stem_bn.scale and stem_bn.gamma.shape[0] == slim.get_layer("stem").filters < 16  # the mask is its gamma
    assert slim.get_layer("dw").groups == slim.get_layer("dw").filters == slim.get_layer("stem").filters
    assert slim.get_layer("layer_scale").projection_dim == slim.get_layer("stem").filters
    slim.save(tmp_path / "slim.keras")
    again = keras.saving.load_model(tmp_path / "slim.keras")
    np.testing.assert_allclose(again(x, training=False), slim(x, training=False), rtol=1e-6, atol=1e-6)
    assert kslim.plan(slim, ratio=0.2).factors[0] > 0  # the folded gammas score the next pass


def test_border_bias_is_exact_after_zero_padding_and_for_separable_convolutions():
    # ResNet50V2 and KerasHub's ResNet pad with ZeroPadding2D and convolve with padding="valid"; Xception's
    # SeparableConv2D sees the constant through its depthwise taps: both were off on the border.
    x = inp = keras.Input((10, 10, 3))
    x = L.ReLU(name="r0")(L.BatchNormalization(name="b0")(L.Conv2D(12, 3, padding="same", name="c0")(x)))
    x = L.ZeroPadding2D(((1, 2), (2, 1)), name="pad")(x)
    x = L.Conv2D(12, 3, strides=2, name="c1")(x)
    x = L.ReLU(name="r1")(L.BatchNormalization(name="b1")(x))
    x = L.SeparableConv2D(10, 3, padding="same", depth_multiplier=2, name="sep")(x)
    x = L.BatchNormalization(name="b2")(x)
    model = sparsify(keras.Model(inp, L.Dense(4, name="out")(L.GlobalAveragePooling2D()(x))), beta_zero=False)
    x = _inputs(model)
    plan = kslim.plan(model, threshold=1e-6)
    slim = kslim.prune(model, plan=plan)
    interior = kslim.prune(model, plan=plan, compensate="interior")
    before = model(x, training=False)
    assert _rel_err(before, slim(x, training=False)) <= 1e-5 < _rel_err(before, interior(x, training=False))
    assert {"c1_border", "sep_border"} <= {layer.name for layer in slim.layers}

    # ZeroPadding1D keeps its padding as (before, after), not as one pair per axis.
    x = inp = keras.Input((12, 3))
    x = L.ReLU(name="r0")(L.BatchNormalization(name="b0")(L.Conv1D(12, 3, padding="same", name="c0")(x)))
    x = L.BatchNormalization(name="b1")(L.Conv1D(10, 3, name="c1")(L.ZeroPadding1D((1, 2), name="pad")(x)))
    model = sparsify(keras.Model(inp, L.Dense(4, name="out")(L.GlobalAveragePooling1D()(x))), beta_zero=False)
    x = _inputs(model)
    slim = kslim.prune(model, threshold=1e-6)
    assert _rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    assert "c1_border" in {layer.name for layer in slim.layers}


class _ConvBlock(keras.layers.Layer):
    """A user's block: its weights all belong to the layers it calls."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = L.Conv2D(filters, 3, padding="same", name=f"{self.name}_conv")
        self.bn = L.BatchNormalization(momentum=0.9, name=f"{self.name}_bn")
        self.act = L.ReLU(name=f"{self.name}_relu")

    def call(self, x):
        return self.act(self.bn(self.conv(x)))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


class _ValueDependent(_ConvBlock):
    """Reads a value in Python (Keras builds it from compute_output_shape): cannot be traced symbolically."""

    def call(self, x):
        y = self.act(self.bn(self.conv(x)))
        return y if np.all(np.isfinite(keras.ops.convert_to_numpy(x))) else -y

    def build(self, shape):
        self.conv.build(shape)
        self.bn.build(shape[:-1] + (self.filters,))

    def compute_output_shape(self, shape):
        return shape[:-1] + (self.filters,)


def test_composite_custom_layers_are_inlined_and_untraceable_ones_are_named_barriers():
    # A custom layer without a handler was a barrier even when it only composes Keras layers; now its
    # call is traced into them. One that branches on a tensor's value cannot be traced and stays whole.
    x = inp = keras.Input((8, 8, 3))
    x = L.Conv2D(16, 3, padding="same", name="stem")(x)
    x = _ConvBlock(16, name="blockA")(x)
    x = _ConvBlock(12, name="blockB")(x)
    x = _ValueDependent(8, name="opaque")(x)
    model = sparsify(keras.Model(inp, L.Dense(3, name="out")(L.GlobalAveragePooling2D()(x))), frac=0.4)
    plan = kslim.plan(model, threshold=1e-8)
    assert "blockA_conv" in plan.layers and "blockB_conv" in plan.layers
    assert any("'opaque' (_ValueDependent)" in reason and "register_handler" in reason
               for reason in plan.kept_reasons), plan.kept_reasons
    slim = kslim.prune(model, plan=plan)
    x = _inputs(model)
    assert _rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    names = {layer.name for layer in slim.layers}
    assert {"blockA_conv", "blockA_bn", "opaque"} <= names and "blockA" not in names


def test_prune_returns_only_a_model_that_runs_and_computes_what_the_masked_one_does(monkeypatch):
    from kslim.pruning import surgery

    model = sparsify(archs.vgg())
    rebuild = surgery.rebuild

    def wrong_weights(*args, **kwargs):
        slim = rebuild(*args, **kwargs)
        slim.get_layer("fc1").set_weights([w + 1.0 for w in slim.get_layer("fc1").get_weights()])
        return slim

    monkeypatch.setattr(surgery, "rebuild", wrong_weights)
    with pytest.raises(ValueError, match=r"The pruned 'vgg' computes something else than the masked model: max "
                                         r"\|difference\| [\d.e+-]+ for outputs of scale"):
        kslim.prune(model, threshold=1e-6)
    kslim.prune(model, threshold=1e-6, compensate=False)  # no fold asked for: not compared

    def cannot_run(*args, **kwargs):
        x = keras.Input((3, 3, 3))
        return keras.Model(x, L.Dense(10)(L.Flatten()(x)))

    monkeypatch.setattr(surgery, "rebuild", cannot_run)
    with pytest.raises(ValueError, match=r"The pruned 'vgg' cannot run on inputs of the model's shape \(\(2, 16, 16, "
                                         r"3\)\)"):
        kslim.prune(model, threshold=1e-6)
