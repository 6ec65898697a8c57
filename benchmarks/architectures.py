"""Does kslim prune the models Keras users have, exactly? Every keras.applications family, transfer learning, KerasHub.

For each architecture: about 40% of its scaling factors (BN gammas; for the
models without them, `kslim.add_channel_masks`' masks) are set to zero with
`kslim.testing.exactness.sparsify`, the model is pruned with
`kslim.plan(threshold=1e-8)` + `kslim.prune`, and the pruned model is compared
with the masked original on random inputs (max |difference| / max |output|):

- `exact, beta 0`: the zeroed channels' betas are zero too (the constant they
  leave is 0, as after Yang et al.'s masks or a proximal step on both);
- `exact, beta kept`: the betas stay (the real state after L1 on gamma alone):
  the constant the pruned channels leave is folded into the next layer's bias,
  and for a same-padded convolution wider than 1x1 a `BorderBias` after it
  adds the value that differs on the zero-padded border; `interior fold only`
  is the same prune with `compensate="interior"` (the bias alone, what kslim
  did before `BorderBias`);
- `removed`: the share of the zeroed factors whose channels were removed (a
  channel tied to others by an element-wise add goes only when all are zero;
  a barrier keeps its input channels);
- params and FLOPs removed (`kslim.profile`), and the time of plan + prune.

The transfer-learning rows call a backbone as one layer of the user's model
(functional, Sequential) and are compared with their flat twins (the same
backbone's layers built into one graph, same zero pattern): the issue asks
for the same parameter reduction within 1 point.

Architectures: the keras.applications families of the installed Keras
(`weights=None`; 64x64 inputs, 96x96 where a family needs more), three
transfer-learning shapes and their flat twins, and KerasHub backbones and an
ImageClassifier built from their constructors (`kslim.testing.archs.HUB`;
skipped without keras-hub), a U-Net-style decoder with `Conv2DTranspose`
(`archs.unet`), and KerasHub's transformer and segmentation tasks
(`archs.HUB_TASKS`: ViT, MiT, DeepLabV3, SegFormer), each pruned exactly or
refused with kslim's own `ValueError` (the table lists the refusals), never a
model that cannot run. Results: benchmarks/results/architectures.json and
architectures.md.

Usage:

    python benchmarks/architectures.py [--only ResNet50,hub_resnet]
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

# (name, keras.applications constructor, input size, extra arguments)
APPLICATIONS = [
    ("ConvNeXtTiny", 64, {}),
    ("DenseNet121", 64, {}),
    ("EfficientNetB0", 64, {}),
    ("EfficientNetV2B0", 64, {}),
    ("InceptionResNetV2", 96, {}),
    ("InceptionV3", 96, {}),
    ("MobileNet", 64, {}),
    ("MobileNetV2", 64, {}),
    ("MobileNetV3Small", 64, {"include_preprocessing": False}),
    ("MobileNetV3Large", 64, {"include_preprocessing": False}),
    ("NASNetMobile", 96, {}),
    ("ResNet50", 64, {}),
    ("ResNet50V2", 64, {}),
    ("VGG16", 64, {}),
    ("Xception", 96, {}),
]
TRANSFER = ["MobileNetV2", "ResNet50", "EfficientNetB0"]
TWINS = {}  # transfer row -> builder of its flat twin, whose zero pattern it copies


def _application(name, size, extra, include_top=True):
    import keras

    kwargs = dict(weights=None, input_shape=(size, size, 3), **extra)
    if include_top:
        kwargs["classes"] = 10
    else:
        kwargs["include_top"] = False
    return getattr(keras.applications, name)(**kwargs)


def _transfer(name, wrap):
    """A backbone called as one layer (`functional`, `sequential`) or its layers built flat (`flat`)."""
    import keras

    L = keras.layers
    base = _application(name, 64, {}, include_top=False)
    if wrap == "flat":
        x = L.GlobalAveragePooling2D(name="pool")(base.output)
        return keras.Model(base.input, L.Dense(10, name="head")(x), name=f"{name}_flat")
    if wrap == "sequential":
        return keras.Sequential([keras.Input((64, 64, 3)), base, L.GlobalAveragePooling2D(name="pool"),
                                 L.Dense(10, name="head")], name=f"{name}_sequential")
    inp = keras.Input((64, 64, 3))
    x = L.GlobalAveragePooling2D(name="pool")(base(inp))
    return keras.Model(inp, L.Dense(10, name="head")(x), name=f"{name}_nested")


def builders(only=None):
    """`{row name: (source, builder)}` of every architecture, in table order."""
    from kslim.testing import archs

    out = {"unet": ("decoder", archs.unet)}
    for name, size, extra in APPLICATIONS:
        out[name] = ("keras.applications", lambda n=name, s=size, e=extra: _application(n, s, e))
    for name in TRANSFER:
        for wrap in ("flat", "functional", "sequential"):
            if wrap == "sequential" and name != "MobileNetV2":
                continue
            out[f"{name} {wrap}"] = ("transfer", lambda n=name, w=wrap: _transfer(n, w))
            if wrap != "flat":
                TWINS[f"{name} {wrap}"] = lambda n=name: _transfer(n, "flat")
    try:
        import keras_hub  # noqa: F401

        from kslim.testing import archs

        for name, build in archs.HUB.items():
            out[name] = ("KerasHub", build)
        for name, build in archs.HUB_TASKS.items():
            out[name] = ("KerasHub task", build)
    except ImportError:
        print("keras-hub is not installed: the KerasHub rows are skipped", flush=True)
    if only:
        out = {k: v for k, v in out.items() if k in only or k.split()[0] in only}
    return out


def measure(name, source, build):
    import keras
    import numpy as np

    import kslim
    from kslim.pruning.verify import sample_inputs
    from kslim.testing.exactness import rel_err, sparsify

    keras.utils.set_random_seed(0)
    model = build()
    masks = not kslim.scaling_factors(model)
    row = {"model": name, "source": source, "class": type(model).__name__, "input": list(model.input_shape[1:]),
           "masks": masks}
    if masks:
        try:
            model = kslim.add_channel_masks(model)
        except ValueError as error:  # kslim's own refusal, naming the layer: recorded as such
            row["refused"] = str(error).splitlines()[0]
            print(f"{name:28s} refused: {row['refused'][:160]}", flush=True)
            return row
    row["factors"] = sum(int(v.shape[0]) for _, v in kslim.scaling_factors(model))
    x = sample_inputs(model)
    twin = TWINS[name]() if name in TWINS else None
    for beta_zero in (True, False):
        sparsify(model, frac=0.4, beta_zero=beta_zero)
        if twin is not None:  # the flat twin's zero pattern, layer by layer
            _copy_by_name(sparsify(twin, frac=0.4, beta_zero=beta_zero), model)
        before = keras.ops.convert_to_numpy(model(x, training=False))
        start = time.perf_counter()
        try:
            plan = kslim.plan(model, threshold=1e-8)
            slim = kslim.prune(model, plan=plan)
        except ValueError as error:  # kslim's own refusal, naming the layer: recorded as such
            row["refused"] = str(error).splitlines()[0]
            print(f"{name:28s} refused: {row['refused'][:160]}", flush=True)
            return row
        seconds = time.perf_counter() - start
        error = rel_err(before, slim(x, training=False))
        if beta_zero:
            zeroed = sum(int(np.sum(np.abs(keras.ops.convert_to_numpy(v)) < 1e-8))
                         for _, v in kslim.scaling_factors(model))
            p0, p1 = kslim.profile(model), kslim.profile(slim)
            barriers = sorted({r.split(": ", 1)[-1] for r in plan.kept_reasons
                               if "register" in r or "operation" in r})
            row.update(zeroed=zeroed, removed=plan.factors[1], params=[p0.params, p1.params],
                       flops=[p0.flops, p1.flops], seconds=seconds, error_beta_zero=error,
                       barriers=barriers[:5])
        else:
            row["error_beta_kept"] = error
            interior = kslim.prune(model, plan=plan, compensate="interior")
            row["error_beta_kept_interior"] = rel_err(before, interior(x, training=False))
            row["border_layers"] = sum(isinstance(layer, kslim.layers.BorderBias) for layer in slim.layers)
    print(f"{name:28s} {row['factors']:6d} factors  removed {row['removed'] / max(row['zeroed'], 1):6.1%}  "
          f"params -{_pct(row['params'])}  FLOPs -{_pct(row['flops'])}  "
          f"err {row['error_beta_zero']:.1e} / {row['error_beta_kept']:.1e} (interior only "
          f"{row['error_beta_kept_interior']:.1e})  {row['seconds']:.1f} s", flush=True)
    return row


def _copy_by_name(source, target):
    from kslim._internal import keras_api

    layers = {layer.name: layer for layer in keras_api.all_layers(source)}
    for layer in keras_api.all_layers(target):
        if layer.weights and layer.name in layers and not hasattr(layer, "layers"):
            layer.set_weights(layers[layer.name].get_weights())


def _pct(pair):
    a, b = pair
    return f"{100 * (1 - b / a):.1f}%" if a else "-"


def markdown(rows, machine):
    lines = [
        f"Measured with `python benchmarks/architectures.py` on {machine['date']}, {machine['platform']}, "
        f"{machine['cpu_count']} CPU cores, TensorFlow {machine['tensorflow']}, Keras {machine['keras']}"
        + (f", KerasHub {machine['keras_hub']}" if machine.get("keras_hub") else "") + ". "
        "About 40% of the scaling factors zeroed (`sparsify(frac=0.4)`), `kslim.plan(threshold=1e-8)`; "
        "errors are max |pruned - masked| / max |masked| on 2 random inputs.",
        "",
        "| model | source | factors | zeroed removed | params removed | FLOPs removed | exact, beta 0 | "
        "exact, beta kept | beta kept, interior fold only | plan + prune |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        if "refused" in r:
            continue
        kind = r["source"] + (" (masks)" if r["masks"] else "")
        lines.append(
            f"| {r['model']} | {kind} | {r['factors']:,} | {r['removed'] / max(r['zeroed'], 1):.0%} | "
            f"{_pct(r['params'])} | {_pct(r['flops'])} | {r['error_beta_zero']:.1e} | "
            f"{r['error_beta_kept']:.1e} | {r['error_beta_kept_interior']:.1e} | {r['seconds']:.1f} s |"
        )
    flat = {r["model"].split()[0]: r for r in rows if r["model"].endswith(" flat")}
    pairs = [(r, flat[r["model"].split()[0]]) for r in rows
             if r["source"] == "transfer" and not r["model"].endswith(" flat") and r["model"].split()[0] in flat]
    if pairs:
        lines += ["", "Transfer learning against the flat twin (parameters removed):", "",
                  "| model | nested | flat | difference (points) |", "| --- | ---: | ---: | ---: |"]
        for r, f in pairs:
            a, b = (100 * (1 - x["params"][1] / x["params"][0]) for x in (r, f))
            lines.append(f"| {r['model']} | {a:.1f}% | {b:.1f}% | {a - b:+.2f} |")
    refused = [r for r in rows if "refused" in r]
    if refused:
        lines += ["", "Refused with kslim's `ValueError` (no model returned):", "", "| model | source | error |",
                  "| --- | --- | --- |"]
        lines += [f"| {r['model']} | {r['source']} | {r['refused'].replace('|', '/')} |" for r in refused]
    barriers = [(r["model"], b) for r in rows for b in r.get("barriers", ())]
    if barriers:
        lines += ["", "Barriers the plans name (channels kept; a handler would remove them):", ""]
        lines += [f"- {m}: {b}" for m, b in barriers]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated row names (or their first word)")
    args = parser.parse_args()
    import keras

    import _common

    rows = []
    for name, (source, build) in builders(set(filter(None, args.only.split(",")))).items():
        rows.append(measure(name, source, build))
        keras.backend.clear_session()
    machine = _common.machine()
    try:
        import keras_hub

        machine["keras_hub"] = keras_hub.__version__
    except ImportError:
        pass
    if args.only:
        print("--only: results not written")
        return
    path = _common.write("architectures", {"rows": rows})
    (path.parent / "architectures.md").write_text(markdown(rows, machine))
    print(f"wrote {path} and architectures.md")


if __name__ == "__main__":
    main()
