"""Stream channel permutation (issue 13): the readers' selections become few runs; the model stays exact."""

import keras
import numpy as np
import pytest

import kslim
from kslim.layers.channel_select import runs
from kslim.testing import archs
from kslim.testing.exactness import inputs, rel_err, sparsify

L = keras.layers


def _selections(plan):
    """`{layer: (runs in the original channel order, runs in the pruned model's order)}`."""
    return {
        name: (len(runs(sorted(rec["out"]))), len(runs(rec["select"])))
        for name, rec in plan.layers.items() if rec["select"] is not None
    }


@pytest.mark.parametrize("name", ["preact_resnet", "densenet"])
def test_permuted_streams_give_readers_fewer_runs_and_the_pruned_model_stays_exact(name):
    # Every reader draws its own zero pattern (shared=0) and keeps its betas: the stream's
    # channels are permuted in every producer and reader, the constants still folded exactly.
    model = sparsify(archs.ALL[name](), frac=0.4, beta_zero=False, shared=0.0, seed=3)
    plan = kslim.plan(model, threshold=1e-8)
    slim = kslim.prune(model, plan=plan)
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    found = _selections(plan)
    assert found
    for rec in plan.layers.values():
        if rec["select"] is not None:
            assert rec["select"] == sorted(rec["select"])  # the reader's channels keep the stream's order
    before = sum(b for b, _ in found.values())
    after = sum(a for _, a in found.values())
    assert after < before, found
    if name == "preact_resnet":
        # Stage 0's stream has 3 readers (s0b0, s0b1, s1b0), stage 1's has 2 (s1b1, final_bn):
        # in the reflected Gray order the first two of a stream are one run, the third two at most.
        assert all(a <= 2 for _, a in found.values()), found
        assert sum(a == 1 for _, a in found.values()) >= 4, found
        assert any(b > 2 for b, _ in found.values()), found  # the original order was worse
        for layer in ("stem", "s0b0_down", "s0b0_conv3", "s0b1_conv3"):  # producers of the stream
            out = plan.layers[layer]["out"]
            assert out is not None and sorted(out) == list(range(len(out))), layer  # reordered, none pruned


def _stream_model(output_stream=False, barrier=False):
    """Two pre-activation blocks on one stream; the stream is also an output, or read by a Lambda."""
    x = inp = keras.Input((8, 8, 3))
    x = L.Conv2D(16, 3, padding="same", name="stem")(x)
    for b in range(2):
        y = L.BatchNormalization(name=f"b{b}_bn")(x)
        y = L.ReLU(name=f"b{b}_relu")(y)
        y = L.Conv2D(8, 1, name=f"b{b}_conv1")(y)
        y = L.BatchNormalization(name=f"b{b}_bn2")(y)
        y = L.ReLU(name=f"b{b}_relu2")(y)
        x = L.Add(name=f"b{b}_add")([x, L.Conv2D(16, 1, name=f"b{b}_conv2")(y)])
    head = L.GlobalAveragePooling2D(name="gap")(L.ReLU(name="final_relu")(L.BatchNormalization(name="final_bn")(x)))
    outputs = [L.Dense(4, name="logits")(head)]
    if output_stream:
        outputs.append(x)
    if barrier:
        outputs.append(L.Dense(2, name="side")(L.Flatten(name="flat")(L.Lambda(lambda t: t[..., ::-1], name="flip")(x))))
    return keras.Model(inp, outputs)


@pytest.mark.parametrize("kind", ["output", "barrier"])
def test_a_stream_that_a_model_output_or_a_barrier_reads_keeps_its_order(kind):
    model = sparsify(_stream_model(output_stream=kind == "output", barrier=kind == "barrier"),
                     frac=0.4, beta_zero=False, shared=0.0, seed=1)
    free = sparsify(_stream_model(), frac=0.4, beta_zero=False, shared=0.0, seed=1)
    plan, plan_free = kslim.plan(model, threshold=1e-8), kslim.plan(free, threshold=1e-8)
    assert plan_free.layers["stem"]["out"] is not None  # without the output or the barrier: permuted
    assert plan.layers["stem"]["out"] is None
    assert all(rec["select"] == sorted(rec["select"]) and np.all(np.diff(rec["out"]) > 0)
               for rec in plan.layers.values() if rec["select"] is not None)
    slim = kslim.prune(model, plan=plan)
    x = inputs(model)
    for a, b in zip(model(x, training=False), slim(x, training=False)):
        assert rel_err(a, b) <= 1e-5


def test_a_plan_reapplies_with_the_order_it_was_made_with_and_one_without_is_reordered():
    model = sparsify(archs.preact_resnet(), frac=0.4, beta_zero=False, shared=0.0, seed=3)
    plan = kslim.plan(model, threshold=1e-8)
    again = kslim.Plan.from_json(plan.to_json())
    x = inputs(model)
    expected = keras.ops.convert_to_numpy(kslim.prune(model, plan=plan)(x, training=False))
    np.testing.assert_allclose(kslim.prune(model, plan=again)(x, training=False), expected, rtol=1e-5, atol=1e-6)
    # A plan written before channels were permuted lists every layer's channels in their original
    # order: it decides the same channels, and is rebuilt in the permuted order.
    unordered = kslim.Plan.from_json(plan.to_json())
    for rec in unordered.layers.values():
        rec["in"] = [None if a is None else sorted(a) for a in rec["in"]]
        if rec["out"] is not None:
            rec["out"] = sorted(rec["out"])
            rec["out"] = None if rec["out"] == list(range(rec["channels"][0])) else rec["out"]
    slim = kslim.prune(model, plan=unordered)
    assert rel_err(expected, slim(x, training=False)) <= 1e-5
    assert [layer.name for layer in slim.layers] == [layer.name for layer in kslim.prune(model, plan=plan).layers]


def test_sliceable_keeps_a_selection_only_where_the_measured_cost_model_says_it_pays():
    from kslim.pruning.budget import slice_saving

    # Two readers of one stream drop the same 16 of its 32 channels (one run each). Before a wide
    # 3x3 convolution that saves ~9.4M multiply-accumulates, far more than one slice costs on
    # LiteRT; before a 1x1 convolution to 2 channels, 8K, less than the slice. The output reads the
    # stream too, so it stays whole (channels that every reader prunes would go at the stem).
    x = inp = keras.Input((16, 16, 3))
    stream = L.Conv2D(32, 3, padding="same", name="stem")(x)
    heads = [L.GlobalAveragePooling2D(name="stem_gap")(stream)]
    for name, filters, kernel in (("wide", 256, 3), ("thin", 2, 1)):
        y = L.ReLU(name=f"{name}_relu")(L.BatchNormalization(name=f"{name}_bn")(stream))
        heads.append(L.GlobalAveragePooling2D(name=f"{name}_gap")(L.Conv2D(filters, kernel, padding="same", name=name)(y)))
    model = keras.Model(inp, L.Dense(3, name="logits")(L.Concatenate(name="cat")(heads)))
    for bn in ("wide_bn", "thin_bn"):
        gamma, beta, mean, var = model.get_layer(bn).get_weights()
        gamma[:] = 1.0
        gamma[8:24] = 0.0
        model.get_layer(bn).set_weights([gamma, beta, mean, var])
    assert slice_saving(16 * 16 * 9 * 256 * 16, 1, 16 * 16 * 16) > 0 > slice_saving(16 * 16 * 2 * 16, 1, 16 * 16 * 16)
    every = kslim.plan(model, threshold=1e-8)
    assert every.layers["wide_bn"]["select"] is not None and every.layers["thin_bn"]["select"] is not None
    sliceable = kslim.plan(model, threshold=1e-8, selections="sliceable")
    wide = sliceable.layers["wide_bn"]
    assert sorted(wide["out"]) == list(range(8)) + list(range(24, 32)) and len(runs(wide["select"])) == 1
    assert "thin_bn" not in sliceable.layers or sliceable.layers["thin_bn"]["select"] is None
    slim = kslim.prune(model, plan=sliceable)
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5


def _wide_reader(dead):
    """A 32-channel stream read by the output and, through BN and ReLU, by a 3x3 convolution to 256 at
    16x16, whose BN has gamma 0 for the `dead` channels (1 for the rest)."""
    x = inp = keras.Input((16, 16, 3))
    stream = L.Conv2D(32, 3, padding="same", name="stem")(x)
    y = L.ReLU(name="wide_relu")(L.BatchNormalization(name="wide_bn")(stream))
    y = L.GlobalAveragePooling2D(name="gap")(L.Conv2D(256, 3, padding="same", name="wide")(y))
    model = keras.Model(inp, L.Dense(3, name="logits")(L.Concatenate(name="cat")(
        [y, L.GlobalAveragePooling2D(name="stem_gap")(stream)])))
    gamma, beta, mean, var = model.get_layer("wide_bn").get_weights()
    gamma[:] = 1.0
    gamma[list(dead)] = 0.0
    model.get_layer("wide_bn").set_weights([gamma, beta, mean, var])
    return model


def test_with_an_input_tile_a_selection_saves_only_the_tiles_it_drops():
    from kslim.pruning.budget import selection_lowering

    # The wide reader of the test above drops 16 of 32 stream channels. In tiles of 16 input channels
    # that saves one tile; in tiles of 32 (int8 on an AMX CPU takes 64) it saves nothing, and the
    # reader keeps its whole input.
    macs = 16 * 16 * 9 * 256
    positions = list(range(8)) + list(range(24, 32))
    assert selection_lowering(positions, 32, macs, 16 * 16, input_tile=16)[0] == "slices"
    assert selection_lowering(positions, 32, macs, 16 * 16, input_tile=32) == ("whole", 0.0)
    model = _wide_reader(range(8, 24))
    sixteen = kslim.plan(model, threshold=1e-8, selections="sliceable", round_inputs_to=16)
    assert len(runs(sixteen.layers["wide_bn"]["select"])) == 1
    whole = kslim.plan(model, threshold=1e-8, selections="sliceable", round_inputs_to=32)
    assert "wide_bn" not in whole.layers or whole.layers["wide_bn"]["select"] is None
    assert whole.flops[1] > sixteen.flops[1]


def test_with_an_input_tile_a_selection_keeps_the_channels_that_fill_its_last_tile():
    # The wide reader keeps 8 of 32 stream channels (0-3 and 28-31). In tiles of 16 input channels it
    # reads 16 anyway: the plan keeps 16, the 8 taken back next to the run it keeps (the stream is
    # permuted so that it reads one), so the selection gains no slice and the plan's FLOPs fall only
    # by the tile the file saves.
    model = _wide_reader(range(4, 28))
    one = kslim.plan(model, threshold=1e-8, selections="sliceable")
    assert sorted(one.layers["wide_bn"]["out"]) == list(range(4)) + list(range(28, 32))
    tiled = kslim.plan(model, threshold=1e-8, selections="sliceable", round_inputs_to=16)
    wide = tiled.layers["wide_bn"]
    assert set(wide["out"]) > set(one.layers["wide_bn"]["out"]) and len(wide["out"]) == 16, wide
    assert len(runs(wide["select"])) == len(runs(one.layers["wide_bn"]["select"])) == 1
    assert one.flops[1] < tiled.flops[1] < tiled.flops[0]
    slim = kslim.prune(model, plan=tiled)
    assert kslim.profile(slim).flops == tiled.flops[1]
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
    # In a DenseNet every reader that keeps a selection keeps whole tiles of 8, and stays exact.
    model = sparsify(archs.densenet(input_shape=(32, 32, 3), growth=16, layers=4), frac=0.6, shared=0.0, seed=5)
    plan = kslim.plan(model, threshold=1e-8, selections="sliceable", round_inputs_to=8)
    selects = {name: len(rec["select"]) for name, rec in plan.layers.items() if rec.get("select") is not None}
    assert selects and all(n % 8 == 0 for n in selects.values()), selects
    slim = kslim.prune(model, plan=plan)
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5


def test_a_selection_pays_only_where_it_pays_at_one_and_at_two_threads():
    from kslim.pruning.budget import slice_saving

    # Dropping 16 of 32 channels before a 3x3 convolution to 8 at 16x16 saves ~295k multiply-accumulates:
    # more than one slice costs with 1 interpreter thread, less with 2, where each slice costs 2.7x more
    # and a saved multiply-accumulate less (benchmarks/selection_cost.py --threads 2). A plan or an
    # export is judged by the worse of the two.
    macs, elements = 16 * 16 * 9 * 8 * 16, 16 * 16 * 16
    assert slice_saving(macs, 1, elements, threads=1) > 0 > slice_saving(macs, 1, elements, threads=2)
    assert slice_saving(macs, 1, elements) == slice_saving(macs, 1, elements, threads=2)
    with pytest.raises(ValueError, match=r"threads=4.*fitted at \[1, 2\] threads"):
        slice_saving(macs, 1, elements, threads=4)


def test_an_int8_plan_and_export_judge_selections_by_the_int8_cost_model(tmp_path):
    from kslim.deploy.ops import list_ops
    from kslim.pruning.budget import slice_saving

    # Dropping 16 of 32 channels before a 3x3 convolution to 32 at 16x16 saves ~1.2M multiply-
    # accumulates: more than one slice costs in float32 at 1 and at 2 threads, less in int8 at 2
    # threads, where a multiply-accumulate saved is worth 4x less (benchmarks/selection_cost.py
    # --quantize int8 --threads 2).
    model = archs.one_reader(beta=0.0)
    macs, elements = 16 * 16 * 9 * 32 * 16, 16 * 16 * 16
    assert slice_saving(macs, 1, elements) > 0 > slice_saving(macs, 1, elements, quantize="int8")
    assert slice_saving(macs, 1, elements, quantize="float16") == slice_saving(macs, 1, elements)
    float32 = kslim.plan(model, threshold=1e-8, selections="sliceable")
    int8 = kslim.plan(model, threshold=1e-8, selections="sliceable", quantize="int8")
    assert len(runs(float32.layers["mid_bn"]["select"])) == 1
    assert "mid_bn" not in int8.layers or int8.layers["mid_bn"]["select"] is None
    assert any("selections='sliceable'" in reason for reason in int8.kept_reasons)
    assert int8.flops[1] > float32.flops[1]
    # Exported, the float32 plan's selection is sliced in a float32 file and folded in an int8 one.
    slim = kslim.prune(model, plan=float32)
    x = np.asarray(inputs(model, n=64))
    report = kslim.export(slim, tmp_path / "f32.tflite")
    assert report.selections == {"sliced": 1, "spanned": 0, "folded": 0, "gathered": 0}
    report = kslim.export(slim, tmp_path / "int8.tflite", quantize="int8", representative_data=x)
    assert report.selections == {"sliced": 0, "spanned": 0, "folded": 1, "gathered": 0}
    assert not {"GATHER", "STRIDED_SLICE"} & set(list_ops(report.path))


def test_sliceable_charges_the_border_image_of_dropped_constant_channels(monkeypatch):
    from kslim.pruning import budget

    # Dropped channels with beta 0.5 stay a constant 0.5 after the ReLU: the zero-padded 3x3 reader
    # gets a BorderBias (one image added per call), which a selection with beta 0 does not need.
    # With the border made costly, only the constant channels' selection is refused.
    for beta, border in ((0.5, 1), (0.0, 0)):
        slim = kslim.prune(archs.one_reader(beta=beta), threshold=1e-8)
        assert sum(isinstance(layer, kslim.layers.BorderBias) for layer in slim.layers) == border
    cost = {mode: {threads: dict(c) for threads, c in fits.items()} for mode, fits in budget.SLICE_COST.items()}
    cost["float32"][1]["per_border_element"] = 1.0
    monkeypatch.setattr(budget, "SLICE_COST", cost)
    for beta, kept in ((0.5, True), (0.0, False)):
        model = archs.one_reader(beta=beta)
        plan = kslim.plan(model, threshold=1e-8, selections="sliceable")
        restored = "mid_bn" not in plan.layers or plan.layers["mid_bn"]["select"] is None
        assert restored == kept, (beta, plan.layers.get("mid_bn"))
        slim = kslim.prune(model, plan=plan)
        x = inputs(model)
        assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5


def test_a_sliceable_plan_keeps_the_channels_inside_a_span_it_reads_anyway(monkeypatch, tmp_path):
    from kslim.pruning import budget

    # With slices allowed only for one run, a DenseNet reader whose kept channels form several runs is
    # best read as one slice over its span, dropped channels inside it over zero weights. The plan
    # keeps those channels instead: each selection is one run, and the plan's FLOPs are the file's.
    monkeypatch.setattr(budget, "SLICE_RUNS", 1)
    model = sparsify(archs.densenet(input_shape=(32, 32, 3), growth=16, layers=4), frac=0.5)
    every = kslim.plan(model, threshold=1e-8)
    assert any(rec["select"] is not None and len(runs(rec["select"])) > 1 for rec in every.layers.values())
    plan = kslim.plan(model, threshold=1e-8, selections="sliceable")
    selects = [rec["select"] for rec in plan.layers.values() if rec.get("select") is not None]
    assert selects and all(len(runs(s)) == 1 for s in selects), selects
    slim = kslim.prune(model, plan=plan)
    assert kslim.profile(slim).flops == plan.flops[1] < plan.flops[0]
    report = kslim.export(slim, tmp_path / "m.tflite")
    assert report.selections["spanned"] == report.selections["folded"] == 0 < report.selections["sliced"]
    x = inputs(model)
    assert rel_err(model(x, training=False), slim(x, training=False)) <= 1e-5
