"""What a plan for LiteRT costs in accuracy: the paper's plan against two plans made with `runtime="litert"`.

The deploy benchmark (`benchmarks/deploy.py`) shows that the paper's plan
(`kslim.prune(model, ratio=0.4)`) gives a pre-activation or dense network
little speed on LiteRT: most of its channel selections are folded into zero
weights, so the file computes most of the FLOPs the plan removed. Two plans
made for LiteRT do pay: `tiled` (`ratio=0.4, runtime="litert"`: the same
ratio's channels, only where removing them pays) removes few FLOPs, and
`matched` (`flops_target=f, runtime="litert"`, f the FLOPs fraction the paper's
plan keeps) removes as many FLOPs as the paper's plan, choosing channels whose
removal pays, some with larger scaling factors than the ratio's threshold.

This script measures what each plan costs in accuracy on real data: the
sparsity-trained ResNet-20 and DenseNet-16 of the CIFAR-10 reproduction
(`benchmarks/cifar10_paper.py`, L1, seed 1, read from its cache
`benchmarks/.cache/cifar10/cpu/<job>/pass1/sparse.keras`) are pruned by each
plan and fine-tuned with the reproduction's recipe and epochs (the paper's
CIFAR-10 schedule shortened to 6 and 5 epochs, batch 64, the JPEG copy of
CIFAR-10 in ../shared/data), each from the same seed; test accuracy on the
10,000 test images before and after fine-tuning. Pruning leaves each
network's LiteRT speed to the deploy benchmark (fine-tuning changes no width).

Each row is written to results/litert_finetune.json as it finishes and is
skipped when the script runs again (on this project's 2-core machines a
ResNet-20 row took 14-25 minutes, 6 epochs of 2.3 to 4 minutes, a DenseNet-16
row 14-18, 5 epochs of 2.5 to 3.4 minutes); run
it nice'd in the background, and commit the results file as rows finish:

    nice python benchmarks/litert_finetune.py [--models preresnet20,densenet16] [--plans pruned,matched,tiled]
        [--epochs N] [--limit N]
    nice python benchmarks/litert_finetune.py --models densenet16 --plans layers

`layers` removes whole growth layers (the zoo's `block*_layer*_conv`) instead of channels, as many as remove the
paper's plan's FLOPs (`without_layers`): what the int8 DenseNets' time follows (results/depth_vs_width.md), and
what it costs in accuracy. It was made from kslim's parts before kslim planned it; since d558d7f a plan for
LiteRT (`matched`, `tiled`) removes a growth layer narrower than the channel tile whole itself.

`--limit N` fine-tunes on the first N training images (a smoke test; its
rows are not written to the results file).
"""

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _common  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
CACHE = ROOT / "benchmarks" / ".cache" / "cifar10" / "cpu"
MODELS = {"preresnet20": ("preresnet20-l1-s1", 6), "densenet16": ("densenet16-l1-s1", 5)}  # job, epochs
RATIO = 0.4
PLANS = ("pruned", "matched", "tiled")
EXTRA_PLANS = ("layers",)  # run only when asked for (--plans layers): DenseNet-16 only
SEED = 1
RESULTS = _common.RESULTS / "litert_finetune.json"


def plans(model):
    """`{name: keyword arguments of kslim.plan}` for the three plans of `model`."""
    import kslim

    base, paper = kslim.plan(model, ratio=RATIO).flops  # the plan's FLOPs are the pruned model's
    return {"pruned": dict(ratio=RATIO), "tiled": dict(ratio=RATIO, runtime="litert"),
            "matched": dict(flops_target=paper / base, runtime="litert")}


def without_layers(sparse):
    """`(model, removed, plan)`: a copy of `sparse` with every reader's scaling factor of the channels of whole growth
    layers set to zero (the layers `removed`), so that `kslim.prune(threshold=...)` removes those channels from
    the dense stream: the fewest growth layers, smallest mean |factor| over their channels' readers first, that
    remove at least the FLOPs the paper's plan removes. A growth layer is a convolution that only writes into the
    dense stream, every channel of which is read only through its readers' BNs: a unit of a plan for LiteRT
    (`kslim.pruning.planner.Ranked`, whose units and scores this takes, at any width); a plan for FLOPs holds each
    at one channel (`min_channels`), which no reader reads."""
    import keras

    import kslim
    from kslim.pruning import nesting
    from kslim.pruning.analysis import Analysis
    from kslim.pruning.planner import Ranked

    analysis = Analysis(nesting.flatten(sparse))
    g = analysis.graph
    ranked = Ranked(analysis, analysis.prunable(), layers_up_to=float("inf"))
    if not ranked.units:
        raise ValueError(f"'{sparse.name}' has no growth layers to remove (the `layers` plan is for DenseNets).")
    order = sorted(ranked.units, key=lambda key: (ranked.scores[key], -key))  # ties in the model's order
    goal = kslim.plan(sparse, ratio=RATIO).flops[1]  # the paper's plan's FLOPs
    model = keras.models.clone_model(sparse)
    for k in range(1, len(order) + 1):
        removed = [g.nodes[-1 - key].op.name for key in order[:k]]
        zero = set().union(*(ranked.units[key] for key in order[:k]))
        model.set_weights(sparse.get_weights())
        for node in g.nodes:
            if node.role == "scale":
                layer = model.get_layer(node.op.name)
                gamma = keras.ops.convert_to_numpy(layer.gamma).copy()
                gamma[[j for j, c in enumerate(g.ids[node.outputs[0]]) if g.group(c) in zero]] = 0.0
                layer.gamma.assign(gamma)
        plan = kslim.plan(model, threshold=1e-12)
        if plan.flops[1] <= goal:
            return model, removed, plan
    raise ValueError(f"Removing every growth layer of '{sparse.name}' keeps more FLOPs than the paper's plan.")


def run_row(name, plan_name, args):
    import keras
    import tensorflow as tf

    import kslim

    job, epochs = MODELS[name]
    epochs = args.epochs or epochs
    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    sparse = keras.saving.load_model(str(CACHE / job / "pass1" / "sparse.keras"), compile=False)
    kslim.detach(sparse)
    if plan_name == "layers":
        zeroed, removed, plan = without_layers(sparse)
        kwargs = {"threshold": 1e-12, "removed_layers": removed}  # after zeroing their readers' factors
        model = kslim.prune(zeroed, plan=plan)
    else:
        kwargs = plans(sparse)[plan_name]
        plan = kslim.plan(sparse, **kwargs)
        model = kslim.prune(sparse, plan=plan)
    train = kslim.data.load(str(DATA), "train", batch_size=64, seed=SEED, limit=args.limit)
    test = kslim.data.load(str(DATA), "test", batch_size=500)
    recipe = kslim.recipe.paper("cifar10").replace(epochs=epochs)

    def accuracy(m):
        recipe.compile(m, steps_per_epoch=1)
        return float(m.evaluate(test, verbose=0, return_dict=True)["accuracy"])

    unpruned, before = accuracy(sparse), accuracy(model)
    recipe.compile(model, steps_per_epoch=int(train.cardinality()))
    start = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=2, shuffle=False)
    seconds = time.perf_counter() - start
    cost, base = kslim.profile(model), kslim.profile(sparse)
    return {
        "model": name, "plan": plan_name, "plan_args": kwargs, "job": job, "seed": SEED, "epochs": epochs,
        "channels_pruned": int(plan.factors[1]), "channels": int(plan.factors[0]),
        "flops": int(cost.flops), "flops_reduction": base.flops / cost.flops,
        "params": int(cost.trainable_params), "unpruned_test_accuracy": unpruned,
        "pruned_test_accuracy": before, "finetuned_test_accuracy": accuracy(model),
        "finetune_s": seconds, "train_images": args.limit or 50_000,
    }


def markdown(data):
    lines = [
        "# Plans for LiteRT: accuracy after fine-tuning (`benchmarks/litert_finetune.py`)",
        "",
        f"Measured {data['machine']['date']} on {data['machine']['cpu_model']}, {data['machine']['cpu_count']} "
        f"cores, TensorFlow {data['machine']['tensorflow']}, Keras {data['machine']['keras']}. The CIFAR-10 "
        "reproduction's sparsity-trained models (L1, seed 1), pruned by each plan and fine-tuned with its recipe "
        "(the paper's schedule shortened to the epochs given, batch 64, seed 1, the JPEG copy of CIFAR-10); "
        "test accuracy on the 10,000 test images. `pruned`: `ratio=0.4` (the paper's plan); `matched`: "
        "`flops_target=f, runtime=\"litert\"`, f the FLOPs fraction `pruned` keeps; `tiled`: `ratio=0.4, "
        "runtime=\"litert\"`; `layers` (DenseNet-16): whole growth layers removed instead of channels, every "
        "reader's factor of their channels zeroed and `kslim.prune(threshold=1e-12)` (the fewest layers, smallest "
        "mean reader |factor| first, that remove the paper's plan's FLOPs; each kept at the one channel "
        "`min_channels` holds, which no reader reads: FLOPs counted with it). Their LiteRT speed-ups are the "
        "`_trained` rows of results/deploy.md (`layers`: none; see results/depth_vs_width.md).",
        "",
        "| model | plan | channels pruned | FLOPs red. | params | unpruned | pruned | fine-tuned (epochs) | "
        "fine-tune time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = PLANS + EXTRA_PLANS
    for r in sorted(data["rows"], key=lambda r: (list(MODELS).index(r["model"]), order.index(r["plan"]))):
        lines.append(
            f"| {r['model']} | {r['plan']} | {r['channels_pruned']} of {r['channels']} | {r['flops_reduction']:.2f}x "
            f"| {r['params']:,} | {100 * r['unpruned_test_accuracy']:.2f}% | {100 * r['pruned_test_accuracy']:.2f}% "
            f"| {100 * r['finetuned_test_accuracy']:.2f}% ({r['epochs']}) | {r['finetune_s'] / 60:.1f} min |")
    for r in data.get("superseded", []):  # rows whose plan kslim no longer makes, kept with the reason
        lines.append(f"\nSuperseded: {r['model']} {r['plan']}, {r['channels_pruned']} channels pruned, "
                     f"{r['flops_reduction']:.2f}x fewer FLOPs, fine-tuned to {100 * r['finetuned_test_accuracy']:.2f}% "
                     f"({r['superseded']}).")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--plans", default=",".join(PLANS))
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (default: the reproduction's)")
    parser.add_argument("--limit", type=int, default=None, help="training images (a smoke test, not recorded)")
    args = parser.parse_args()
    names, plan_names = args.models.split(","), args.plans.split(",")
    for name in names:
        if name not in MODELS:
            parser.error(f"--models: unknown {name!r}; choose from {list(MODELS)}")
        sparse = CACHE / MODELS[name][0] / "pass1" / "sparse.keras"
        if not sparse.exists():
            parser.error(f"{sparse} is missing: run `python benchmarks/cifar10_paper.py --cache {MODELS[name][0]}`")
    if any(p not in PLANS + EXTRA_PLANS for p in plan_names):
        parser.error(f"--plans: choose from {list(PLANS + EXTRA_PLANS)}")
    record = args.limit is None and args.epochs is None
    data = json.loads(RESULTS.read_text()) if record and RESULTS.exists() else {"rows": []}
    for name in names:  # the faster model's rows first
        for plan_name in plan_names:
            if any(r["model"] == name and r["plan"] == plan_name for r in data["rows"]):
                continue
            print(f"== {name} {plan_name}", flush=True)
            row = run_row(name, plan_name, args)
            print(json.dumps(row), flush=True)
            if not record:
                continue
            data["rows"].append(row)
            data["machine"] = _common.machine()
            tmp = RESULTS.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(tmp, RESULTS)
            RESULTS.with_suffix(".md").write_text(markdown(data))


if __name__ == "__main__":
    main()
