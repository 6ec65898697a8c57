"""Deployment benchmark: what slimming buys in TFLite size, latency and memory on this CPU.

For VGG-19 (CIFAR width), pre-activation ResNet-164 and DenseNet-40 from the
zoo, pruned at the paper's ratios (70% / 40% / 40% of all channels), and for
keras.applications ResNet50V2 and DenseNet121 (pre-activation and dense
streams; weights=None, 96x96 input, 40%), this script reports for the
baseline and each pruned variant (`pruned`: the paper's channel selections;
`sliceable`: `selections="sliceable"`; `tiled`: `runtime="litert"`, that
with `round_to=kslim.deploy.channel_tile()` and
`round_inputs_to=kslim.deploy.channel_tile(inputs=True)`; `matched`:
`flops_target=f, runtime="litert"`, f the FLOPs fraction `pruned` keeps, the
paper's FLOPs reduction planned for LiteRT; float32 and int8,
the int8 plans made with `quantize="int8"`, which makes `runtime="litert"`
round to the int8 tiles): trainable parameters
(as the paper counts them; `kslim.profile(m).trainable_params`), FLOPs
(2 x MACs), float32 TFLite file size, single-image latency with the LiteRT
interpreter (XNNPACK, its default CPU delegate) at 1 and 2 threads (median,
p10, p90), run-time memory, the measured speed-up next to the FLOPs reduction
factor, and their ratio (the aim is >= 0.9). It also sets the reductions in
parameters and FLOPs next to Liu et al., Table 1.

The scaling factors (gamma rule). Training these networks with the sparsity
penalty on 2 CPU cores takes days, so by default gamma is set by a
documented, deterministic rule that mimics a slimming-trained network: many
channels' |gamma| collapse to ~0, the rest spread over larger values, and how
many collapse depends on the layer. For the n_l channels of BN layer l (in
topological order, relative depth d_l in [0, 1]):

    s_l  = min(0.95, c * r_l * exp(kappa * d_l))       fraction of "dead" channels
    dead : |gamma| ~ Exponential(mean 1e-3)             the mass near zero
    alive: |gamma| ~ max(0.05, LogNormal(median 0.3, sigma 0.5))

exactly round(s_l * n_l) channels per layer are dead, picked by a seeded
permutation (seed 0; numpy default_rng([seed, crc32(model name)])); c is
solved by bisection so that the dead channels number `ratio` of all channels,
i.e. the global percentile falls in the gap of the distribution, as it does in
the paper's trained networks. r_l is 1 for a BN that reads a shared stream
(its input feeds other layers too, or comes from an Add/Concatenate: pruning it
needs a channel selection) and `internal` otherwise. Per model:

- vgg19: kappa=6, internal=1. Deeper layers far sparser: the paper's VGG-19
  keeps nearly all channels of the first blocks and prunes the 512-wide
  layers of blocks 4-5 most (a public PyTorch reproduction, pytorch-slimming,
  reports widths [49, 64, 128, 128, 256, 254, 234, 198, 114, 41, 24, 11,
  14, 13, 19, 104] at 70%).
- preresnet164: kappa=0, internal=0.15. Most pruned channels sit on the
  residual stream (each block's bn1): Table 1's 40% of channels remove only
  15% of parameters and 24% of FLOPs, which is only possible that way, since a
  stream channel only thins the block's 1x1 conv1 input.
- densenet40: kappa=1, internal=1 (every BN of DenseNet-40 reads the
  concatenated stream; deeper layers read longer concatenations).

Trained gammas: `preresnet20_trained` and `densenet16_trained` are the
sparsity-trained models (L1, seed 1) of `benchmarks/cifar10_paper.py`, read
from its cache (`benchmarks/.cache/cifar10/cpu/<job>/pass1/sparse.keras`),
pruned at 40%, each float32 variant's test accuracy measured on the 10,000
CIFAR-10 test images (before any fine-tuning); they run by default where that cache has them (on a new
machine: `python benchmarks/cifar10_paper.py --cache
preresnet20-l1-s1,densenet16-l1-s1`: the two jobs took 39 and 44 minutes in
results/cifar10.json; the 2026-12-04 rows
come from such a rerun of the sparse stage: test accuracy 69.4% and 73.1%
for the sparse ResNet-20 and DenseNet-16, against the recorded runs' 69.6%
and 73.9%).

BN beta, moving mean and variance keep their initial values (0, 0, 1) and the
convolutions their seeded random initialisation: latency, size and memory do
not depend on the weight values. `--train_epochs N --data PATH` replaces the
rule by real sparsity training (L1, lambda 1e-4 for VGG and 1e-5 otherwise,
the paper's recipe shortened to N epochs) on the first `--train_samples`
training images of a CIFAR-10 copy on disk; it is off by default.

Checks. The pruned model must compute what the baseline computes with the
pruned gammas set to zero (max |difference| relative to the output scale is
recorded), and every export passes `kslim.export`'s parity check.

Latency. The machine is shared, so baseline and pruned models are timed
interleaved: all interpreters stay loaded, and in each round each one runs
`--block` back-to-back invokes in a shuffled order, until `--runs` timed
invokes each. Speed-up is paired: per round, median(baseline) / median(pruned); reported
as the median over rounds with the p10-p90 of those ratios (the ratio of the
overall medians and of the p10s are in the JSON too). `kslim.measure` gives the memory and a
sequential latency cross-check.

The pruned model is exported by `kslim.export` as a user would: its
`ChannelSelect` layers become static slices or are folded into zero weights
(no GATHER; the JSON records how many of each). Diagnostic (off with
--quick): every model is also timed without XNNPACK (TFLite's builtin
kernels), to show where the time goes.

Results go to benchmarks/results/deploy.json and deploy.md.

Usage:

    python benchmarks/deploy.py [--models vgg19,preresnet164,densenet40,resnet50v2,densenet121] [--runs 400] [--quick]
    python benchmarks/deploy.py --rewrite   # the notes and deploy.md again from results/deploy.json
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import pathlib
import sys
import tempfile
import time
import zlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import _common  # noqa: E402
import kslim  # noqa: E402
from kslim.deploy.convert import _tflite_bytes  # noqa: E402
from kslim.deploy.depthwise_bn import unfolded_batch_norms  # noqa: E402
from kslim.deploy.int8_pooling import replaceable_pools  # noqa: E402
from kslim.pruning.graph import Graph  # noqa: E402
from kslim.sparsity.factors import scaling_factors  # noqa: E402
from kslim.testing.exactness import masked_output  # noqa: E402

MODELS = ("vgg19", "preresnet164", "densenet40", "resnet50v2", "densenet121")
RATIOS = {"vgg19": 0.7, "preresnet164": 0.4, "densenet40": 0.4, "resnet50v2": 0.4, "densenet121": 0.4}
RULES = {
    "vgg19": {"kappa": 6.0, "internal": 1.0},
    "preresnet164": {"kappa": 0.0, "internal": 0.15},
    "densenet40": {"kappa": 1.0, "internal": 1.0},
    "resnet50v2": {"kappa": 0.0, "internal": 0.15},  # pre-activation, like ResNet-164
    "densenet121": {"kappa": 1.0, "internal": 1.0},  # every BN reads the dense stream, like DenseNet-40
}
# keras.applications models: built with weights=None (nothing downloads) at this input size, so that
# their FLOPs are of the order of the CIFAR models' (ResNet50V2 0.9G, DenseNet121 0.5G at 96x96).
APPLICATIONS = {"resnet50v2": "ResNet50V2", "densenet121": "DenseNet121"}
APPLICATION_INPUT = (96, 96, 3)
# Trained gammas: the sparsity-trained models of the CIFAR-10 reproduction (benchmarks/cifar10_paper.py, L1,
# seed 1), read from its cache on this machine; rows for the ones that are not there are skipped.
TRAINED = {"preresnet20_trained": "preresnet20-l1-s1", "densenet16_trained": "densenet16-l1-s1"}
CIFAR_CACHE = pathlib.Path(__file__).resolve().parent / ".cache" / "cifar10" / "cpu"
RATIOS.update({name: 0.4 for name in TRAINED})
CIFAR10 = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
GAMMA = {"s_max": 0.95, "dead_mean": 1e-3, "alive_median": 0.3, "alive_sigma": 0.5, "alive_min": 0.05}
LAMBDAS = {"vgg19": 1e-4, "preresnet164": 1e-5, "densenet40": 1e-5}
# Liu et al. 2017, Table 1 (CIFAR-10): params and FLOPs, baseline -> pruned.
PAPER = {
    "vgg19": {"params": [20.04e6, 2.30e6], "flops": [7.97e8, 3.91e8]},
    "preresnet164": {"params": [1.70e6, 1.44e6], "flops": [4.99e8, 3.81e8]},
    "densenet40": {"params": [1.02e6, 0.66e6], "flops": [5.33e8, 3.81e8]},
}
AIM = 0.9  # issue 13: speed-up at least 0.9x the FLOPs reduction kslim.profile reports


# ---------------------------------------------------------------- gamma rule


def _stream_bns(model):
    """Names of the BN layers that read a shared stream (pruning them needs a channel selection)."""
    graph = Graph(model)
    return {
        node.op.name
        for node in graph.nodes
        if node.role == "scale"
        and any(graph.kind[c][0] == "child" and c not in graph.merged for c in graph.ids[node.outputs[0]])
    }


def set_gammas(model, ratio, kappa, internal, seed=0):
    """Sets every BN gamma by the rule in the module docstring; returns its per-layer record."""
    factors = scaling_factors(model)
    stream = _stream_bns(model)
    n = np.array([int(v.shape[0]) for _, v in factors])
    depth = np.arange(len(factors)) / max(len(factors) - 1, 1)
    weight = np.array([1.0 if layer.name in stream else internal for layer, _ in factors])
    weight = weight * np.exp(kappa * depth)
    lo, hi = 0.0, 1.0 / weight.min()
    for _ in range(100):  # bisection on c: the dead channels are `ratio` of all
        c = (lo + hi) / 2
        lo, hi = (c, hi) if (np.minimum(GAMMA["s_max"], c * weight) * n).sum() < ratio * n.sum() else (lo, c)
    sparsity = np.minimum(GAMMA["s_max"], c * weight)
    rng = np.random.default_rng([seed, zlib.crc32(model.name.encode())])
    layers = []
    for (layer, variable), size, s in zip(factors, n, sparsity):
        dead = int(round(s * size))
        gamma = rng.lognormal(np.log(GAMMA["alive_median"]), GAMMA["alive_sigma"], size)
        gamma = np.maximum(gamma, GAMMA["alive_min"])
        gamma[rng.permutation(size)[:dead]] = rng.exponential(GAMMA["dead_mean"], dead)
        variable.assign(gamma.astype("float32"))
        layers.append({"layer": layer.name, "channels": int(size), "sparsity": round(float(s), 4),
                       "dead": dead, "stream": layer.name in stream})
    return {"source": "rule", "seed": seed, "ratio": ratio, "kappa": kappa, "internal": internal,
            "c": float(c), **GAMMA, "dead_total": int(sum(r["dead"] for r in layers)),
            "channels_total": int(n.sum()), "layers": layers}


def train_gammas(model, name, data, epochs, samples):
    """Real sparsity training (L1 on gamma, the paper's recipe cut to `epochs`) on a data subset."""
    train = kslim.data.load(data, "train", limit=samples, seed=0)
    kslim.attach(model, lam=LAMBDAS[name])
    steps = int(train.cardinality())
    kslim.recipe.paper("cifar10").replace(epochs=epochs).compile(model, steps_per_epoch=steps)
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, verbose=2)
    kslim.detach(model)
    gammas = np.concatenate([np.abs(keras.ops.convert_to_numpy(v)) for _, v in scaling_factors(model)])
    return {"source": "trained", "data": str(data), "samples": samples, "epochs": epochs,
            "lam": LAMBDAS[name], "train_s": time.perf_counter() - start,
            "final_loss": float(history.history["loss"][-1]),
            "gamma_percentiles": {p: float(np.percentile(gammas, p)) for p in (10, 40, 50, 70, 90)}}


# ------------------------------------------------------------------ checks


def _masked_difference(model, slim, plan, x):
    """max |slim(x) - masked(x)| / max |masked(x)|, masked = model with the pruned gammas at 0."""
    masked = masked_output(model, plan, x)
    pruned = keras.ops.convert_to_numpy(slim(x, training=False))
    return float(np.abs(pruned - masked).max() / max(np.abs(masked).max(), 1e-30))


# --------------------------------------------- diagnostic: no channel selections


# ------------------------------------------------------------------- timing


def _partitions(path):
    """Number of XNNPACK partitions (DELEGATE nodes) after the interpreter applied its delegate."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    except Exception:  # a private API; a diagnostic only
        return None


def _cifar10_test():
    """The CIFAR-10 test images the trained rows were trained for (the JPEG copy in ../shared/data)."""
    return kslim.data.load(str(CIFAR10), "test", batch_size=500)


def _interpreter(path, threads, xnnpack):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {} if xnnpack else {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    interpreter = Interpreter(model_path=path, num_threads=threads, **kwargs)
    detail = interpreter.get_input_details()[0]
    shape = [1] + [int(d) for d in detail["shape_signature"][1:]]
    interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    return interpreter


def interleaved_latency(configs, runs, block, warmup=10, seed=0):
    """Times `{key: (path, threads, xnnpack)}` interleaved; returns `{key: [per-round arrays of ms]}`."""
    interpreters = {key: _interpreter(*config) for key, config in configs.items()}
    for interpreter in interpreters.values():
        for _ in range(warmup):
            interpreter.invoke()
    rng = np.random.default_rng(seed)
    keys = list(interpreters)
    times = {key: [] for key in keys}
    for _ in range(-(-runs // block)):
        for i in rng.permutation(len(keys)):
            interpreter, round_times = interpreters[keys[i]], np.empty(block)
            for j in range(block):
                start = time.perf_counter()
                interpreter.invoke()
                round_times[j] = time.perf_counter() - start
            times[keys[i]].append(round_times * 1e3)
    return times


def _stats(rounds):
    t = np.concatenate(rounds)
    return {"median": float(np.median(t)), "p10": float(np.percentile(t, 10)),
            "p90": float(np.percentile(t, 90)), "runs": int(t.size)}


def _speedup(base_rounds, other_rounds):
    """Paired speed-up: per round, median(baseline) / median(other); median and p10/p90 over rounds."""
    ratios = np.array([np.median(b) / np.median(o) for b, o in zip(base_rounds, other_rounds)])
    base, other = np.concatenate(base_rounds), np.concatenate(other_rounds)
    return {"speedup": float(np.median(ratios)), "paired_p10": float(np.percentile(ratios, 10)),
            "paired_p90": float(np.percentile(ratios, 90)),
            "ratio_of_medians": float(np.median(base) / np.median(other)),
            "ratio_of_p10": float(np.percentile(base, 10) / np.percentile(other, 10))}


# --------------------------------------------------------------- per model


def architecture(name):
    """The untrained model `name`: a keras.applications model (weights=None, APPLICATION_INPUT, 10 classes)
    for the names in APPLICATIONS, else the zoo's."""
    if name in APPLICATIONS:
        return getattr(keras.applications, APPLICATIONS[name])(weights=None, input_shape=APPLICATION_INPUT, classes=10)
    return kslim.models.get(name)


def calibration(model, count=200):
    """The `count` standard-normal inputs (seed 2) that the benchmarks calibrate int8 files of `model` on: latency
    only, no accuracy."""
    return np.random.default_rng(2).standard_normal((count,) + tuple(model.inputs[0].shape[1:])).astype("float32")


def synthetic(name):
    """`(model, target)`: the untrained model `name` with the gamma rule's factors (seed 0), as its rows here have
    them, and the FLOPs fraction the paper's plan keeps, which `matched` asks for."""
    model = architecture(name)
    set_gammas(model, RATIOS[name], seed=0, **RULES[name])
    paper = kslim.plan(model, ratio=RATIOS[name])
    return model, paper.flops[1] / paper.flops[0]


def run_model(name, args, workdir):
    print(f"\n== {name} (ratio {RATIOS[name]}) ==", flush=True)
    record = {"model": name, "ratio": RATIOS[name], "timings_s": {}}
    t0 = time.perf_counter()
    if name in TRAINED:
        path = CIFAR_CACHE / TRAINED[name] / "pass1" / "sparse.keras"
        model = keras.saving.load_model(str(path), compile=False)
        kslim.detach(model)
        gammas = np.concatenate([np.abs(keras.ops.convert_to_numpy(v)) for _, v in scaling_factors(model)])
        record["gamma"] = {"source": "trained", "model_file": str(path.relative_to(CIFAR_CACHE.parent.parent.parent)),
                           "gamma_percentiles": {p: float(np.percentile(gammas, p)) for p in (10, 40, 50, 70, 90)}}
    else:
        model = architecture(name)
    if name in TRAINED:
        pass
    elif args.train_epochs:
        record["gamma"] = train_gammas(model, name, args.data, args.train_epochs, args.train_samples)
    else:
        record["gamma"] = set_gammas(model, RATIOS[name], seed=args.seed, **RULES[name])
    start = time.perf_counter()
    plan = kslim.plan(model, ratio=RATIOS[name])
    slim = kslim.prune(model, plan=plan)
    record["timings_s"]["prune"] = time.perf_counter() - start
    record["channels"] = {"total": plan.factors[0], "pruned": plan.factors[1], "threshold": plan.threshold}
    record["widths"] = {layer: rec["channels"] for layer, rec in plan.layers.items()
                        if rec["class"] == "BatchNormalization"}
    x = np.random.default_rng(1).standard_normal((8,) + tuple(model.inputs[0].shape[1:])).astype("float32")
    record["pruned_vs_masked_rel_diff"] = _masked_difference(model, slim, plan, x)
    record["channel_selections"] = sum(isinstance(l, kslim.layers.ChannelSelect) for l in slim.layers)

    # The default path (every reader's selection, as the paper prunes); where the model has selections,
    # selections="sliceable" (readers whose selection LiteRT would run over the whole stream, or whose
    # slices cost more than they save, keep their whole input); and `tiled`, sliceable with every
    # pruned width rounded up to the channel tiles XNNPACK's convolutions run in on this CPU (of output
    # and of input channels, as latency-budgeted plans round). Each float32, and int8 for the baseline
    # and the last two, the int8 ones planned with quantize="int8" (and rounded to the int8 tiles).
    tile, tile_int8 = kslim.deploy.channel_tile(1), kslim.deploy.channel_tile(1, quantize="int8")
    tile_in, tile_in_int8 = (kslim.deploy.channel_tile(1, inputs=True),
                             kslim.deploy.channel_tile(1, quantize="int8", inputs=True))
    record["tile"], record["tile_int8"] = tile, tile_int8
    record["input_tile"], record["input_tile_int8"] = tile_in, tile_in_int8
    variants = {"baseline": (model, None), "pruned": (slim, None)}
    plans = {}
    if record["channel_selections"]:
        plans["sliceable"] = dict(selections="sliceable")
    plans["tiled"] = dict(runtime="litert")  # selections="sliceable", the tiles measured here
    for tag, kw in plans.items():
        p = kslim.plan(model, ratio=RATIOS[name], **kw)
        variants[tag] = (kslim.prune(model, plan=p), None)
        record[f"{tag}_channels_pruned"] = p.factors[1]
    variants["baseline int8"] = (model, "int8")
    first = "sliceable" if "sliceable" in plans else "pruned"
    variants[f"{first} int8"] = (variants[first][0], "int8")
    for tag, kw in plans.items():  # runtime="litert" with quantize="int8" rounds to the int8 tiles
        p = kslim.plan(model, ratio=RATIOS[name], quantize="int8", **kw)
        variants[f"{tag} int8"] = (kslim.prune(model, plan=p), "int8")
        record[f"{tag}_int8_channels_pruned"] = p.factors[1]
    # `matched`: the FLOPs the paper's plan removes, asked for as a FLOPs budget of a plan for LiteRT
    # (bisection over the ratio; the channels that go are the ones that pay, not the ratio's).
    record["matched_flops_target"] = plan.flops[1] / plan.flops[0]  # the plan counts the pruned model's FLOPs
    record["matched_channels_pruned"], record["matched_unreachable"] = {}, {}
    for quantize in (None, "int8"):
        try:
            p = kslim.plan(model, flops_target=record["matched_flops_target"], runtime="litert", quantize=quantize)
        except ValueError as error:  # the int8 tiles can leave nothing to prune in a narrow network
            record["matched_unreachable"][quantize or "float32"] = str(error)
            continue
        variants["matched" + (" int8" if quantize else "")] = (kslim.prune(model, plan=p), quantize)
        record["matched_channels_pruned"][quantize or "float32"] = p.factors[1]
    test = _cifar10_test() if name in TRAINED else None
    inputs = calibration(model)
    record["variants"] = {}
    for tag, (m, quantize) in variants.items():
        profile = kslim.profile(m)
        path = os.path.join(workdir, f"{name}_{tag.replace(' ', '_')}.tflite")
        start = time.perf_counter()
        # int8 is timed, not scored: untrained networks with synthetic gammas have outputs near 1e-14,
        # which int8 cannot represent, so its parity check gets no bound.
        report = kslim.export(m, path, quantize=quantize, representative_data=inputs if quantize else None,
                              atol=float("inf") if quantize else None)
        export_s = time.perf_counter() - start
        measured = kslim.measure(path, threads=(1, 2), runs=30, warmup=5, memory=True)
        record["variants"][tag] = {
            "params": int(profile.trainable_params), "params_with_bn_statistics": int(profile.params),
            "flops": int(profile.flops), "size_bytes": report.size_bytes,
            "ops": report.ops, "selections": report.selections, "flops_added": report.flops_added,
            "parity_max_abs_diff": report.max_abs_diff, "export_s": export_s,
            "xnnpack_partitions": _partitions(path), "memory_bytes": measured.memory_bytes,
            "peak_rss_bytes": measured.peak_rss_bytes,
            "kslim_measure_sequential_ms": {str(k): v for k, v in measured.latency_ms.items()},
            "path": path, "quantize": quantize or "float32",
        }
        if test is not None and quantize is None:  # the Keras model, before any fine-tuning
            m.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            record["variants"][tag]["test_accuracy"] = float(m.evaluate(test, verbose=0, return_dict=True)["accuracy"])
        print(f"  {tag:17s} exported in {export_s:5.1f} s, {report.size_bytes / 2**20:6.2f} MiB, "
              f"params {profile.trainable_params:,}, FLOPs {profile.flops:,}, memory {measured.memory_bytes / 2**20:.1f} MiB",
              flush=True)
    # Diagnostic: the baseline converted as it is (each stream BN a MUL and an ADD, and XNNPACK's ReLU
    # pass; in int8, each average pooling outside XNNPACK) against kslim.export's file (one depthwise
    # convolution each).
    plain = {}
    if not args.quick:
        for quantize in (None, "int8"):
            plain[quantize] = os.path.join(workdir, f"{name}_plain_{quantize or 'float32'}.tflite")
            with open(plain[quantize], "wb") as f:
                f.write(_tflite_bytes(model, quantize, inputs if quantize else None))
        record["plain_conversion"] = {
            "batch_norms": len(unfolded_batch_norms(model)),
            "average_pools": len(replaceable_pools(model))}
    keras.backend.clear_session()

    configs = {("plain", quantize, 1, True): (path, 1, True) for quantize, path in plain.items()}
    for tag, v in record["variants"].items():
        for threads in (1, 2):
            configs[(tag, threads, True)] = (v["path"], threads, True)
        if not args.quick and v["quantize"] == "float32":
            configs[(tag, 1, False)] = (v["path"], 1, False)
    start = time.perf_counter()
    times = interleaved_latency(configs, args.runs, args.block, seed=args.seed)
    record["timings_s"]["latency"] = time.perf_counter() - start
    for quantize in plain:
        rounds = times.pop(("plain", quantize, 1, True))
        base = times[("baseline" + (" int8" if quantize else ""), 1, True)]
        record["plain_conversion"][quantize or "float32"] = dict(plain_ms=_stats(rounds), **_speedup(rounds, base))
    for (tag, threads, xnnpack), rounds in times.items():
        key = f"{threads}" if xnnpack else f"{threads}_no_xnnpack"
        record["variants"][tag].setdefault("latency_ms", {})[key] = _stats(rounds)
    base = record["variants"]["baseline"]
    for tag, v in record["variants"].items():
        v["flops_reduction"] = base["flops"] / v["flops"]
        v["params_reduction"] = base["params"] / v["params"]
        reference = "baseline" if v["quantize"] == "float32" else f"baseline {v['quantize']}"
        v["size_reduction"] = record["variants"][reference]["size_bytes"] / v["size_bytes"]
        if tag.startswith("baseline"):
            continue
        v["speedup"] = {}
        v["against"] = reference
        for (t2, threads, xnnpack), rounds in times.items():
            if t2 == tag:
                key = f"{threads}" if xnnpack else f"{threads}_no_xnnpack"
                s = _speedup(times[(reference, threads, xnnpack)], rounds)
                s["speedup_over_flops_reduction"] = s["speedup"] / v["flops_reduction"]
                v["speedup"][key] = s
    for v in record["variants"].values():
        del v["path"]
    record["paper"] = _paper_comparison(name, base, record["variants"]["pruned"]) if name in PAPER else None
    record["notes"] = _notes(name, record)
    record["timings_s"]["total"] = time.perf_counter() - t0
    return record


def _paper_comparison(name, base, pruned):
    paper = PAPER[name]
    ours = {"params": [base["params"], pruned["params"]], "flops": [base["flops"], pruned["flops"]]}
    return {
        "paper": paper,
        "ours": ours,
        "reduction_pct": {
            k: {"paper": 100 * (1 - paper[k][1] / paper[k][0]), "ours": 100 * (1 - ours[k][1] / ours[k][0])}
            for k in ("params", "flops")
        },
    }


def _slower(v):
    """The thread counts at which a variant whose FLOPs fall by 10% or more runs slower than its baseline."""
    if v["flops_reduction"] < 1 / 0.9:
        return []
    return [threads for threads in ("1", "2") if v["speedup"][threads]["speedup"] < 1]


def aim_lines(results):
    """Issue 13's two aims over every row: speed-up >= 0.9x the FLOPs reduction at 1 thread, per variant;
    and the rows slower than their baseline (at 1 or 2 threads) although their FLOPs fall by 10% or more."""
    met, slower = {}, []
    for record in results:
        for tag, v in record["variants"].items():
            if tag.startswith("baseline"):
                continue
            met.setdefault(tag, []).append((record["model"], v["speedup"]["1"]["speedup_over_flops_reduction"]))
            slower += [f"{record['model']} `{tag}` at {threads} thread(s), {v['speedup'][threads]['speedup']:.4f}x "
                       f"for {v['flops_reduction']:.2f}x fewer FLOPs" for threads in _slower(v)]
    lines = []
    order = ["pruned", "sliceable", "tiled", "matched"]
    for tag, rows in sorted(met.items(), key=lambda item: (" int8" in item[0], order.index(item[0].split()[0]))):
        short = [f"{model} {ratio:.2f}" for model, ratio in rows if ratio < AIM]
        lines.append(f"- `{tag}`: {len(rows) - len(short)} of {len(rows)} models meet the {AIM} aim at 1 thread"
                     + (f" (short: {', '.join(short)})" if short else "") + ".")
    lines.append("- Slower than the baseline with FLOPs down by 10% or more: "
                 + ("; ".join(slower) if slower else "none, at 1 or 2 threads") + ".")
    return lines


def _notes(name, record):
    """Plain statements of where the measured speed-up falls short of the FLOPs reduction, and why."""
    notes = []
    variants = record["variants"]
    pruned, base = variants["pruned"], variants["baseline"]
    for tag, v in variants.items():
        if tag.startswith("baseline"):
            continue
        parts = []
        for threads in ("1", "2"):
            sp = v["speedup"][threads]
            parts.append(f"{threads} thread{'s' if threads != '1' else ''} {sp['speedup']:.2f}x "
                         f"(ratio {sp['speedup_over_flops_reduction']:.2f}, p10 ratio {sp['ratio_of_p10']:.2f}x)")
        ratio = v["speedup"]["1"]["speedup_over_flops_reduction"]
        verdict = "meets" if ratio >= AIM else "falls short of"
        slower = _slower(v)
        notes.append(f"`{tag}` against `{v['against']}`: {v['flops_reduction']:.2f}x fewer FLOPs, speed-up "
                     f"{'; '.join(parts)}: {verdict} the {AIM} aim at 1 thread"
                     + (f"; slower than the baseline at {' and '.join(slower)} thread(s)" if slower else "") + ".")
    if record["channel_selections"]:
        lowered = pruned.get("selections") or {}
        notes.append(
            f"`pruned` (every reader's selection, the paper's way) has {record['channel_selections']} channel "
            f"selections: `kslim.export` wrote {lowered.get('sliced', 0)} as static slices and folded "
            f"{lowered.get('folded', 0)} into zero weights (more than 4 runs of consecutive channels, or slices that "
            f"the measured cost model says cost more than the narrower convolution saves, at 1 or at 2 threads), so the file has no GATHER and runs as {pruned.get('xnnpack_partitions')} "
            f"XNNPACK partition(s) (the baseline: {variants['baseline'].get('xnnpack_partitions')}). A folded "
            "selection gives back the FLOPs it saved, so this file does more FLOPs than `kslim.profile` counts for "
            "the pruned Keras model"
            + (f": {pruned['flops_added'] / 1e6:.1f}M more (`ExportReport.flops_added`), so the file's FLOPs fall "
               f"{base['flops'] / (pruned['flops'] + pruned['flops_added']):.2f}x and the speed-up is "
               f"{pruned['speedup']['1']['speedup'] * (pruned['flops'] + pruned['flops_added']) / base['flops']:.2f} "
               "of that at 1 thread" if pruned.get("flops_added") else "") + ".")
    if "sliceable" in variants:
        sl = variants["sliceable"]
        notes.append(
            f"`sliceable` (`selections=\"sliceable\"`, as latency-budgeted plans prune, here with `round_to=1`; `tiled` rounds to the tiles as they do by default) keeps the whole input of "
            f"each reader whose selection would be folded or, by the measured cost model "
            f"(`benchmarks/selection_cost.py`), would cost more as slices than it saves at 1 or at 2 threads: {record['sliceable_channels_pruned']} channels pruned "
            f"instead of {record['channels']['pruned']}, {(sl.get('selections') or {}).get('folded', 0)} selections "
            f"folded, {sl.get('xnnpack_partitions')} partition(s); its FLOPs are the ones the file runs, "
            f"{sl['flops_reduction']:.2f}x fewer than the baseline's.")
        if "sliceable int8" in variants and "sliceable_int8_channels_pruned" in record:
            notes.append(
                f"`sliceable int8` is planned with `quantize=\"int8\"` (the int8 cost model, where slices save less): "
                f"{record['sliceable_int8_channels_pruned']} channels pruned.")
    if "tiled" in variants and "tile" in record:
        notes.append(
            f"`tiled` is `runtime=\"litert\"`: `sliceable` with `round_to=kslim.deploy.channel_tile()` ({record['tile']} here): every pruned "
            f"width wider than {record['tile']} is rounded up to a multiple of it, the output channels XNNPACK computes "
            f"at once on this CPU"
            + (f", and with `round_inputs_to=channel_tile(inputs=True)` ({record['input_tile']} here) every "
               "pruned width, and a selection's saving counted, in whole tiles of input channels"
               if "input_tile" in record else "")
            + f": {record['tiled_channels_pruned']} channels pruned "
            f"({record.get('tiled_int8_channels_pruned', '-')} for `tiled int8`"
            + (f", rounded to the int8 tile `channel_tile(quantize=\"int8\")`, {record['tile_int8']} here"
               if "tile_int8" in record else "")
            + (f", and the int8 input tile, {record['input_tile_int8']}" if "input_tile_int8" in record else "")
            + f"), {variants['tiled']['flops_reduction']:.2f}x fewer FLOPs.")
    if "matched_flops_target" in record:
        reached = record["matched_channels_pruned"]
        int8 = ("" if "int8" not in reached and not record["matched_unreachable"].get("int8") else
                f" ({reached['int8']} for `matched int8`)" if "int8" in reached else
                " (`matched int8`: not reachable, the int8 tiles leave too little to prune)")
        notes.append(
            f"`matched` is `kslim.prune(model, flops_target={record['matched_flops_target']:.3f}, "
            "runtime=\"litert\")`, the FLOPs that `pruned` keeps, asked of a plan for LiteRT (a bisection over "
            "the ratio: the channels that go are those whose removal pays, not only the ratio's lowest gammas)"
            + (f": {reached['float32']} channels pruned{int8}, {variants['matched']['flops_reduction']:.2f}x "
               "fewer FLOPs" if "float32" in reached else ": not reachable")
            + (f"; test accuracy before fine-tuning {100 * variants['matched']['test_accuracy']:.2f}%, against "
               f"{100 * pruned['test_accuracy']:.2f}% for `pruned` and {100 * base['test_accuracy']:.2f}% unpruned"
               if "test_accuracy" in variants.get("matched", {}) else "") + ".")
    plain = record.get("plain_conversion")
    if plain and (plain["batch_norms"] or plain["average_pools"]):
        runs = {q: f"{plain[q]['speedup']:.2f}x [{plain[q]['paired_p10']:.2f}, {plain[q]['paired_p90']:.2f}] in {q} "
                   f"({plain[q]['plain_ms']['median']:.2f} ms plain)" for q in ("float32", "int8")}
        notes.append(
            f"`kslim.export` writes each of the {plain['batch_norms']} BNs that read a stream (not a convolution's "
            "only output, so the converter cannot fold them) as one 1x1 depthwise convolution with its ReLU fused, "
            "instead of a MUL, an ADD and XNNPACK's separate ReLU pass"
            + (f", and in int8 each of the {plain['average_pools']} average poolings as a depthwise convolution "
               "(XNNPACK takes no int8 AVERAGE_POOL_2D)" if plain["average_pools"] else "")
            + f": the baseline file runs {runs['float32']} and {runs['int8']} as fast as the plain conversion "
            "(1 thread); every variant gets it.")
    no_x = pruned["speedup"].get("1_no_xnnpack")
    if no_x:
        notes.append(
            f"Without XNNPACK (TFLite builtin kernels, 1 thread) the speed-up is {no_x['speedup']:.2f}x "
            f"(ratio {no_x['speedup_over_flops_reduction']:.2f}); baseline "
            f"{record['variants']['baseline']['latency_ms']['1_no_xnnpack']['median']:.2f} ms vs "
            f"{record['variants']['baseline']['latency_ms']['1']['median']:.2f} ms with XNNPACK.")
    no_gain = [tag for tag, v in record["variants"].items()
               if v["latency_ms"]["2"]["median"] > 0.95 * v["latency_ms"]["1"]["median"]]
    if no_gain:
        notes.append(f"2 threads bring no gain over 1 for {', '.join(no_gain)}: XNNPACK wakes the second thread "
                     "for every operator, which small operators do not repay, and the machine's 2 cores may have been "
                     "shared with other work (see the load average).")
    ratio = pruned["speedup"]["1"]["speedup_over_flops_reduction"]
    if name == "vgg19" and ratio > 1:
        notes.append(
            f"The speed-up exceeds the FLOPs reduction: the pruned model has {pruned['params_reduction']:.1f}x fewer "
            "weights, and the layers pruned most are the 512-wide 3x3 convolutions at 4x4 and 2x2 pixels, which "
            "use each of their 2.4M weights only 16 or 4 times: they are likely bound by weight traffic rather "
            "than arithmetic (not measured per layer here).")
    elif not record["channel_selections"] and ratio < AIM:
        thin = sorted(w[1] for w in record["widths"].values())[:4]
        notes.append(f"The narrowest layers keep {thin} channels; thin layers run at low arithmetic efficiency "
                     "in XNNPACK (per-operator overhead, memory-bound), so time falls less than FLOPs.")
    base = record["variants"]["baseline"]
    if base["memory_bytes"]:
        notes.append(
            f"Run-time memory {base['memory_bytes'] / 2**20:.1f} -> {pruned['memory_bytes'] / 2**20:.1f} MiB for files "
            f"of {base['size_bytes'] / 2**20:.1f} -> {pruned['size_bytes'] / 2**20:.1f} MiB: XNNPACK keeps its own "
            "packed copy of the weights next to the mapped file, plus the activation arena and fixed runtime "
            "buffers, which do not shrink with the weights.")
    return notes


# ------------------------------------------------------------------ output


def _fmt_lat(stats):
    return f"{stats['median']:.2f} [{stats['p10']:.2f}, {stats['p90']:.2f}]"


def table_rows(results):
    header = ["model", "variant", "params", "FLOPs", "TFLite MiB", "ms 1 thr [p10, p90]",
              "ms 2 thr [p10, p90]", "memory MiB", "FLOPs red.", "speed-up 1 thr [p10, p90]",
              "speed-up 2 thr [p10, p90]", "speed-up / FLOPs red. (1 / 2 thr)"]
    rows = [header]
    for r in results:
        for tag, v in r["variants"].items():
            sp = v.get("speedup")
            spread = lambda s: f"{s['speedup']:.2f}x [{s['paired_p10']:.2f}, {s['paired_p90']:.2f}]"  # noqa: E731
            rows.append([
                r["model"], tag, f"{v['params'] / 1e6:.2f}M", f"{v['flops'] / 1e6:.0f}M",
                f"{v['size_bytes'] / 2**20:.2f}", _fmt_lat(v["latency_ms"]["1"]), _fmt_lat(v["latency_ms"]["2"]),
                "-" if v["memory_bytes"] is None else f"{v['memory_bytes'] / 2**20:.1f}",
                "1.00x" if tag.startswith("baseline") else f"{v['flops_reduction']:.2f}x",
                "-" if not sp else spread(sp["1"]),
                "-" if not sp else spread(sp["2"]),
                "-" if not sp else (f"{sp['1']['speedup_over_flops_reduction']:.2f} / "
                                    f"{sp['2']['speedup_over_flops_reduction']:.2f}"),
            ])
    return rows


def accuracy_rows(results):
    """The trained rows' float32 variants: FLOPs, speed-up at 1 thread and CIFAR-10 test accuracy."""
    rows = [["model", "variant", "FLOPs red.", "speed-up 1 thr", "speed-up 2 thr", "test accuracy (no fine-tuning)"]]
    for r in results:
        for tag, v in r["variants"].items():
            if "test_accuracy" not in v:
                continue
            sp = v.get("speedup")
            rows.append([r["model"], tag, f"{v['flops_reduction']:.2f}x",
                         "-" if not sp else f"{sp['1']['speedup']:.2f}x", "-" if not sp else f"{sp['2']['speedup']:.2f}x",
                         f"{100 * v['test_accuracy']:.2f}%"])
    return rows


def paper_rows(results):
    rows = [["model", "params (ours)", "params (paper)", "FLOPs (ours)", "FLOPs (paper)"]]
    for r in results:
        p = r["paper"]
        if p is None:
            continue
        cell = lambda k, who, unit, scale: (  # noqa: E731
            f"{p[who][k][0] / scale:.2f}{unit} -> {p[who][k][1] / scale:.2f}{unit} "
            f"({p['reduction_pct'][k][who]:.1f}% less)")
        rows.append([r["model"], cell("params", "ours", "M", 1e6), cell("params", "paper", "M", 1e6),
                     cell("flops", "ours", "e8", 1e8), cell("flops", "paper", "e8", 1e8)])
    return rows


def _text_table(rows):
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def _md_table(rows):
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def machine():
    info = _common.machine()
    info["ai_edge_litert"] = importlib.metadata.version("ai-edge-litert")
    info["kslim"] = kslim.__version__
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu_model"] = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info["datetime_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return info


def _earlier_runs(data):
    """Names the rows that an earlier run measured (kept by `_merged`)."""
    latest = data["machine"]["datetime_utc"]
    this, earlier = [], []
    for r in data["results"]:
        (this if r.get("run", {}).get("date") == latest else earlier).append(r["model"])
    if not earlier:
        return ""
    return (f" for {', '.join(this)}; {', '.join(earlier)} from an earlier run of the same script "
            "(its JSON rows carry its date)")


def write_markdown(path, data):
    m = data["machine"]
    lines = [
        "# Deployment benchmark (`benchmarks/deploy.py`)",
        "",
        f"Measured {m['date']} on {m['platform']}, {m.get('cpu_model', m['processor'])}, {m['cpu_count']} CPU "
        f"cores shared with other work (load average {data['load_average']['start'][0]:.1f} at start, "
        f"{data['load_average']['end'][0]:.1f} at end); TensorFlow {m['tensorflow']}, Keras {m['keras']}, "
        f"ai-edge-litert {m['ai_edge_litert']}. Run time {data['runtime_s'] / 60:.1f} min"
        f"{' (--quick)' if data['args']['quick'] else ''}" + _earlier_runs(data) + ".",
        "",
        "TFLite float32 and int8 (calibrated on 200 standard-normal inputs: latency only, no accuracy), batch 1, "
        "LiteRT interpreter with XNNPACK; latency median [p10, p90] of "
        f"{data['args']['runs']} invokes per model and thread count, all variants of a model interleaved. "
        "Variants: `pruned` is `kslim.prune(model, ratio=r)` (every reader of a shared stream selects its "
        "channels, as in the paper), `sliceable` the same ratio with `selections=\"sliceable\"`, `tiled` "
        "`runtime=\"litert\"`: that with `round_to=kslim.deploy.channel_tile()` and `round_inputs_to=channel_tile(inputs=True)` (the output- "
        "and input-channel tiles XNNPACK's convolutions run in on this CPU; the int8 tiles, "
        "`channel_tile(quantize=\"int8\", ...)`, for `tiled int8`), `matched` `kslim.prune(model, "
        "flops_target=f, runtime=\"litert\")` with f the FLOPs fraction `pruned` keeps (the paper's FLOPs "
        "reduction, planned for LiteRT); int8 variants are timed against "
        "the int8 baseline, and `sliceable int8` / `tiled int8` / `matched int8` are planned with `quantize=\"int8\"`. ResNet50V2 and DenseNet121 are keras.applications models "
        f"(weights=None, {APPLICATION_INPUT[0]}x{APPLICATION_INPUT[1]} input, 10 classes). "
        "Params are trainable parameters (as in the paper; BN moving statistics excluded). "
        "Speed-up: median over interleaved rounds of median(baseline) / median(pruned), [p10, p90] of those "
        "ratios. FLOPs = 2 x MACs. "
        "Gammas are synthetic (a deterministic sparse rule, see the script docstring), not trained, except in the "
        "`_trained` rows (the CIFAR-10 reproduction's sparsity-trained ResNet-20 and DenseNet-16, L1, seed 1): "
        "the pruned networks are not fine-tuned; only the trained rows' accuracy is measured (below the table).",
        "",
        _md_table(table_rows(data["results"])),
        "",
        "Aims (issue 13):",
        "",
        *aim_lines(data["results"]),
        "",
        *([] if len(accuracy_rows(data["results"])) < 2 else [
            "The trained rows' Keras models on the 10,000 CIFAR-10 test images (the JPEG copy), before any "
            "fine-tuning:",
            "",
            _md_table(accuracy_rows(data["results"])),
            ""]),
        "Reductions against Liu et al. 2017, Table 1 (our gamma rule decides which channels go, so they differ):",
        "",
        _md_table(paper_rows(data["results"])),
        "",
        "Notes:",
        "",
    ]
    for r in data["results"]:
        lines += [f"- **{r['model']}**: " + " ".join(r["notes"])]
    path.write_text("\n".join(lines) + "\n")


def _merged(json_path, data):
    """`data` with the rows of the models this run did not measure kept from the results file; each row
    carries its own run's date, machine load and run time (`run`)."""
    run = {"date": data["machine"]["datetime_utc"], "load_average": data["load_average"],
           "runtime_s": data["runtime_s"], "runs": data["args"]["runs"]}
    for record in data["results"]:
        record["run"] = run
    try:
        previous = json.loads(json_path.read_text())
        old = previous["results"]
    except (OSError, ValueError, KeyError):
        return data
    fresh = {r["model"] for r in data["results"]}
    kept = [r for r in old if r["model"] not in fresh]
    for record in kept:
        record.setdefault("run", {"date": previous["machine"].get("datetime_utc"),
                                  "load_average": previous.get("load_average"),
                                  "runtime_s": previous.get("runtime_s"), "runs": previous["args"]["runs"]})
    order = list(MODELS) + list(TRAINED)
    data["results"] = sorted(kept + data["results"], key=lambda r: order.index(r["model"]))
    return data


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    available = [n for n in TRAINED if (CIFAR_CACHE / TRAINED[n] / "pass1" / "sparse.keras").exists()]
    parser.add_argument("--models", default=",".join(MODELS + tuple(available)),
                        help="comma-separated names (the trained rows where the CIFAR-10 cache has them)")
    parser.add_argument("--runs", type=int, default=None, help="timed invokes per model, variant and threads")
    parser.add_argument("--quick", action="store_true", help="60 runs, no diagnostic variants")
    parser.add_argument("--block", type=int, default=4, help="invokes per interleaved round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train_epochs", type=int, default=0, help="sparsity-train instead of the gamma rule")
    parser.add_argument("--data", default=None, help="CIFAR-10 on disk (kslim.data.load name or path)")
    parser.add_argument("--train_samples", type=int, default=5000)
    parser.add_argument("--rewrite", action="store_true",
                        help="measure nothing: rewrite the notes and deploy.md from results/deploy.json")
    args = parser.parse_args()
    if args.rewrite:
        return rewrite()
    args.runs = args.runs or (60 if args.quick else 400)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS + tuple(available)]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {list(MODELS) + available}")
    if args.train_epochs and not args.data:
        parser.error("--train_epochs needs --data, a CIFAR-10 copy on disk (nothing is downloaded)")
    keras.utils.set_random_seed(args.seed)

    start, load_start = time.perf_counter(), os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="kslim-deploy-") as workdir:
        for name in names:
            results.append(run_model(name, args, workdir))
    data = {
        "machine": machine(),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "args": vars(args),
        "runtime_s": time.perf_counter() - start,
        "gamma_rule": None if args.train_epochs else {
            "formula": "s_l = min(s_max, c * r_l * exp(kappa * d_l)); round(s_l * n_l) channels per layer get "
                       "|gamma| ~ Exponential(dead_mean), the rest max(alive_min, LogNormal(log alive_median, "
                       "alive_sigma)); c solved so that the dead channels are `ratio` of all; r_l = 1 for a BN "
                       "on a shared stream, `internal` otherwise; d_l = relative depth in [0, 1]",
            **GAMMA, "per_model": RULES},
        "aim_speedup_over_flops_reduction": AIM,
        "results": results,
    }
    print("\n" + _text_table(table_rows(results)))
    print("\n" + _text_table(paper_rows(results)))
    if len(accuracy_rows(results)) > 1:
        print("\n" + _text_table(accuracy_rows(results)))
    for r in results:
        print(f"\n{r['model']}:")
        for note in r["notes"]:
            print(f"  - {note}")
    _common.RESULTS.mkdir(exist_ok=True)
    json_path = _common.RESULTS / "deploy.json"
    data = _merged(json_path, data)
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    md_path = _common.RESULTS / "deploy.md"
    write_markdown(md_path, data)
    print(f"\nwrote {json_path} and {md_path} ({data['runtime_s'] / 60:.1f} min)")


def rewrite():
    """The notes and markdown again from the stored measurements (after a change to their wording)."""
    json_path = _common.RESULTS / "deploy.json"
    data = json.loads(json_path.read_text())
    for record in data["results"]:
        record["notes"] = _notes(record["model"], record)
    json_path.write_text(json.dumps(data, indent=1) + "\n")
    write_markdown(_common.RESULTS / "deploy.md", data)
    print(f"rewrote {json_path} and deploy.md from the stored measurements")


if __name__ == "__main__":
    main()
