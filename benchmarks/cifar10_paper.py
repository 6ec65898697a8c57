"""Reproduces network slimming's CIFAR-10 claims on real CIFAR-10 images, at a scale that fits 2 CPU cores.

Every model is trained, sparsity-trained, pruned and fine-tuned on the full
CIFAR-10 training set (50,000 images) and tested on all 10,000 test images,
from the JPEG copy in `../shared/data/cifar10-jpeg.tar.gz` (complete but
lossy: every image re-encoded at JPEG quality 75, so absolute errors can
differ slightly from results on the original data; baseline and pruned models
see the same data). Pre-processing and augmentation are the paper's
(`kslim.data.load`: per-channel mean/std, pad-4 crop and mirroring).

The parts (`--only` runs some of them; each is a list of jobs):

- `table1`: Liu et al., ICCV 2017, Table 1, for a VGG, a pre-activation
  bottleneck ResNet and a DenseNet (growth rate 12, no bottleneck or
  compression, as DenseNet-40): a baseline trained without penalty, then
  `kslim.slim` (sparsity training with L1 on every BN gamma, pruning at the
  paper's ratio -- 70% of the channels for VGG, 40% for ResNet and DenseNet --,
  fine-tuning without the penalty). Seeds 0 and 1 for every row.
- `lambda`: the VGG's L1 row again with a quarter of its penalty weight: at
  the scaled weight (below) the sparse VGG lost 8.9 points in 10 epochs.
- `scratch`: "Rethinking the value of network pruning" (Liu et al., ICLR
  2019): the pruned VGG's widths (seed 0) trained from scratch for as many
  epochs as the baseline (their "Scratch-E").
- `table4`: Table 4's multi-pass scheme on the VGG: `kslim.slim(passes=2,
  ratio=0.5)`, at most 50% of a layer's channels per pass.
- `bui`: Bui et al. (2020/21): L1 against l1/2 (`lp`, p = 0.5), transformed L1
  (`tl1`, a = 1), MCP (a = 1) and SCAD (knee 0.3, a = 3.7, flat above 1.11)
  on the VGG, each sparsity-trained, pruned 70% and fine-tuned; the error
  right after pruning is reported too (TL1 is claimed to keep accuracy
  through pruning). The L1 row is table1's seed 0.

Every training goes through kslim's public workflow: the baselines and the
scratch model with `kslim.recipe.paper("cifar10")` (`Recipe.compile` +
`model.fit`, with `keras.callbacks.BackupAndRestore`), the rest with
`kslim.slim` and a `run_dir`. Everything is checkpointed under `--work_dir`
(default `benchmarks/.cache/cifar10/`, outside git; the deployment benchmark
can read the trained models from there): stop the script at any point and
run it again, and it goes on from the last finished epoch. After each job
the results file `benchmarks/results/cifar10.json` (and the table
`cifar10.md`) is rewritten; with `--commit` it is also committed, so a
change of machine loses no finished row. Run it in the background:

    nice -n 19 python benchmarks/cifar10_paper.py --commit > cifar10.log 2>&1 &

CPU scale and how it deviates from the paper (the JSON lists it too; `--full`
runs the paper's settings unchanged):

- Widths and depths: VGG-19 at a quarter of its widths (16 ... 128 filters
  instead of 64 ... 512; 1.26M parameters instead of 20.0M), a pre-activation
  bottleneck ResNet-20 (2 blocks per stage instead of ResNet-164's 18) and a
  DenseNet-16 (4 layers per dense block instead of DenseNet-40's 12). Measured
  here, one epoch at batch 64: 63 s, 148 s and 267 s.
- Epochs: 10 (VGG), 6 (ResNet) and 5 (DenseNet) for each of baseline,
  sparsity training and fine-tuning, instead of 160 (the schedule, lr 0.1
  divided by 10 at 50% and 75%, is the paper's, over those epochs).
- The penalty weight lambda is the paper's (1e-4 for VGG, 1e-5 for ResNet and
  DenseNet) times 160 / epochs, so that the penalty's total pull on a factor
  over the training is the paper's: with lambda unscaled and 16-32x fewer
  steps, L1 moves a factor by less than the 0.5 it starts at.
- The penalty comparison (Bui et al.) uses one lambda for every penalty (the
  VGG's) and shape parameters chosen so that a penalty still acts on factors
  near their initial 0.5 (SCAD's default knee 0.1 would leave every factor
  above 0.37 unpenalised).
- BN gamma starts at 0.5 (the paper's code), BN momentum 0.9 (PyTorch's).

Total on this machine (2 cores, nothing else running): about 6 hours.

Usage:

    python benchmarks/cifar10_paper.py                 # everything, resumable
    python benchmarks/cifar10_paper.py --only table1   # one part (comma-separated)
    python benchmarks/cifar10_paper.py --quick         # smoke test: 2,000 images, 1 epoch; writes nothing in results/
    python benchmarks/cifar10_paper.py --table         # print the table from the results file
    python benchmarks/cifar10_paper.py --full          # the paper's networks and 160 epochs
    python benchmarks/cifar10_paper.py --cache preresnet20-l1-s1,densenet16-l1-s1   # deploy.py's trained models
"""

import argparse
import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
PARTS = ("table1", "lambda", "scratch", "table4", "bui", "control", "int8", "litert")
TEST_IMAGES = 10_000


@dataclasses.dataclass(frozen=True)
class Family:
    """One network family at the chosen scale."""

    family: str      # "vgg", "preresnet" or "densenet"
    name: str        # the row's model name
    builder: str     # a builder function of kslim.models
    kwargs: dict
    epochs: int
    paper_lam: float
    ratio: float
    recipe: tuple = ()   # (field, value) pairs replacing kslim.recipe.paper("cifar10")'s, besides epochs
    lam_scale: float = None  # None: 160 / epochs (the step schedule's pull); else this factor

    @property
    def lam(self):
        return self.paper_lam * (160 / self.epochs if self.lam_scale is None else self.lam_scale)


QUARTER_VGG19 = [16, 16, 32, 32, 64, 64, 64, 64, 128, 128, 128, 128, 128, 128, 128, 128]
CPU = {
    "vgg": Family("vgg", "vgg19_quarter", "vgg", {"depth": 19, "widths": QUARTER_VGG19}, 10, 1e-4, 0.7),
    "preresnet": Family("preresnet", "preresnet20", "preresnet", {"depth": 20}, 6, 1e-5, 0.4),
    "densenet": Family("densenet", "densenet16", "densenet", {"depth": 16}, 5, 1e-5, 0.4),
}
FULL = {
    "vgg": Family("vgg", "vgg19", "vgg", {"depth": 19}, 160, 1e-4, 0.7),
    "preresnet": Family("preresnet", "preresnet164", "preresnet", {"depth": 164}, 160, 1e-5, 0.4),
    "densenet": Family("densenet", "densenet40", "densenet", {"depth": 40}, 160, 1e-5, 0.4),
}
# Converging runs (--scale converge): 30 epochs per stage, the rate along a cosine after one epoch of
# linear warm-up, weight decay 5e-4. The paper's step schedule stretched over 30 epochs leaves too few
# steps at each rate; a cosine decays smoothly to 0 by the last epoch, and a short schedule needs the
# stronger weight decay that short CIFAR runs commonly use. No label smoothing: it would change the loss
# that the penalty is weighed against, and Keras's sparse cross-entropy has no such option.
CONVERGE_EPOCHS = 30
CONVERGE_RECIPE = (("schedule", "cosine"), ("warmup_epochs", 1.0), ("weight_decay", 5e-4))


def lr_area(epochs, schedule="step", warmup_epochs=0.0, milestones=(0.5, 0.75), decay_rate=0.1, lr=0.1):
    """The sum of the learning rate over training, in epochs x lr (steps per epoch cancel out between two
    recipes at the same batch size): the L1 subgradient's total pull on a factor is lam times this."""
    if schedule == "cosine":
        return lr * epochs / 2  # the linear warm-up and the half cosine each average lr / 2
    edges = [0.0, *milestones, 1.0]
    return lr * epochs * sum((b - a) * decay_rate**i for i, (a, b) in enumerate(zip(edges, edges[1:])))


# lambda at converge scale: the paper's times the ratio of the paper's 160-epoch pull to this recipe's
# (5.63), so the penalty moves a factor as far over the training as the paper's does.
CONVERGE_LAM_SCALE = lr_area(160) / lr_area(CONVERGE_EPOCHS, **dict(CONVERGE_RECIPE[:2]))
CONVERGE = {
    "vgg": Family("vgg", "vgg19_quarter", "vgg", {"depth": 19, "widths": QUARTER_VGG19}, CONVERGE_EPOCHS,
                  1e-4, 0.7, CONVERGE_RECIPE, CONVERGE_LAM_SCALE),
    "preresnet": Family("preresnet", "preresnet20", "preresnet", {"depth": 20}, CONVERGE_EPOCHS, 1e-5, 0.4,
                        CONVERGE_RECIPE, CONVERGE_LAM_SCALE),
    "densenet": Family("densenet", "densenet16", "densenet", {"depth": 16}, CONVERGE_EPOCHS, 1e-5, 0.4,
                       CONVERGE_RECIPE, CONVERGE_LAM_SCALE),
}
SCALES = {"cpu": CPU, "converge": CONVERGE, "full": FULL}
SEEDS = (0, 1)
BUI = {
    "lp": {"p": 0.5},
    "tl1": {"a": 1.0},
    "mcp": {"a": 1.0},
    "scad": {"knee": 0.3, "a": 3.7},
}
PAPER = {  # Liu et al., Table 1 (CIFAR-10): test error %, params and FLOPs removed
    "vgg": {"model": "VGGNet-19", "baseline": 6.34, "pruned": 6.20, "params_removed": 88.5,
            "flops_removed": 51.0, "ratio": 0.7},
    "preresnet": {"model": "ResNet-164", "baseline": 5.42, "pruned": 5.08, "params_removed": 14.9,
                  "flops_removed": 31.1, "ratio": 0.4},
    "densenet": {"model": "DenseNet-40", "baseline": 6.11, "pruned": 5.19, "params_removed": 35.7,
                 "flops_removed": 28.4, "ratio": 0.4},
}
DEVIATIONS_CPU = [
    "Networks: VGG-19 at a quarter of its widths (16..128 filters), pre-activation bottleneck ResNet-20, "
    "DenseNet-16 (k=12), instead of VGG-19, ResNet-164 and DenseNet-40.",
    "Epochs per stage: 10 (VGG), 6 (ResNet), 5 (DenseNet) instead of 160; the paper's schedule over them.",
    "lambda: the paper's (1e-4 VGG, 1e-5 ResNet/DenseNet) times 160/epochs, the same total pull on a factor.",
    "Penalty comparison: one lambda for every penalty; MCP a=1, SCAD knee=0.3 a=3.7, TL1 a=1, Lp p=0.5.",
    "Data: the lossy JPEG copy of CIFAR-10 (quality 75), all 50,000 training and 10,000 test images.",
]
DEVIATIONS_CONVERGE = [
    "Networks: VGG-19 at a quarter of its widths (16..128 filters), pre-activation bottleneck ResNet-20, "
    "DenseNet-16 (k=12), instead of VGG-19, ResNet-164 and DenseNet-40.",
    "Epochs per stage: 30 instead of 160, with a cosine schedule after 1 epoch of linear warm-up (lr 0.1) "
    "and weight decay 5e-4 instead of the paper's steps at 50% and 75% and 1e-4.",
    f"lambda: the paper's (1e-4 VGG, 1e-5 ResNet/DenseNet) times {CONVERGE_LAM_SCALE:.2f}, the same total "
    "pull on a factor (lambda times the summed learning rate) as the paper's 160 epochs.",
    "Controls: `control` trains the unpruned VGG for as many epochs as sparsity training plus fine-tuning "
    "(60); `scratch` trains the pruned VGG's widths from scratch for as long (60).",
    "Data: the lossy JPEG copy of CIFAR-10 (quality 75), all 50,000 training and 10,000 test images.",
]


@dataclasses.dataclass(frozen=True)
class Job:
    key: str         # unique; also the folder under --work_dir
    part: str
    kind: str        # "baseline", "slim", "scratch", "control", "int8" or "litert"
    family: Family
    seed: int = 0
    penalty: str = "l1"
    passes: int = 1
    ratio: float = None
    lam: float = None  # None: the family's

    @property
    def penalty_weight(self):
        return self.family.lam if self.lam is None else self.lam


def jobs(families, scale="cpu"):
    """Every job, most important first (a part of the benchmark is useful as soon as its rows exist)."""
    vgg, order = families["vgg"], [families[f] for f in ("vgg", "preresnet", "densenet")]
    if scale == "converge":
        return converge_jobs(vgg, order)
    plan = []
    for seed in SEEDS:
        for fam in order:
            plan.append(Job(f"{fam.name}-baseline-s{seed}", "table1", "baseline", fam, seed))
            plan.append(Job(f"{fam.name}-l1-s{seed}", "table1", "slim", fam, seed, ratio=fam.ratio))
        if seed == 0:
            lam = vgg.lam / 4
            plan.append(Job(f"{vgg.name}-l1-lam{lam:g}-s0", "lambda", "slim", vgg, 0, ratio=vgg.ratio, lam=lam))
            plan.append(Job(f"{vgg.name}-scratch-s0", "scratch", "scratch", vgg, 0))
            plan.append(Job(f"{vgg.name}-l1-2pass-s0", "table4", "slim", vgg, 0, passes=2, ratio=0.5))
            for name in BUI:
                plan.append(Job(f"{vgg.name}-{name}-s0", "bui", "slim", vgg, 0, penalty=name, ratio=vgg.ratio))
    return plan


def converge_jobs(vgg, order):
    """Converging runs: Table 1 (seed 0 for every family, then VGG's seed 1), the file that ships (int8),
    the fair controls, plans for LiteRT, then the other seeds and Table 4."""
    plan = []
    for fam in order:
        plan.append(Job(f"{fam.name}-c30-baseline-s0", "table1", "baseline", fam, 0))
        plan.append(Job(f"{fam.name}-c30-l1-s0", "table1", "slim", fam, 0, ratio=fam.ratio))
        plan.append(Job(f"{fam.name}-c30-int8-s0", "int8", "int8", fam, 0, ratio=fam.ratio))
        if fam is vgg:
            plan.append(Job(f"{fam.name}-c30-control-s0", "control", "control", fam, 0))
            plan.append(Job(f"{fam.name}-c30-scratch-s0", "scratch", "scratch", fam, 0))
            plan.append(Job(f"{fam.name}-c30-baseline-s1", "table1", "baseline", fam, 1))
            plan.append(Job(f"{fam.name}-c30-l1-s1", "table1", "slim", fam, 1, ratio=fam.ratio))
            plan.append(Job(f"{fam.name}-c30-int8-s1", "int8", "int8", fam, 1, ratio=fam.ratio))
    for fam in order:
        plan.append(Job(f"{fam.name}-c30-litert-s0", "litert", "litert", fam, 0, ratio=fam.ratio))
    for fam in order[1:]:
        plan.append(Job(f"{fam.name}-c30-baseline-s1", "table1", "baseline", fam, 1))
        plan.append(Job(f"{fam.name}-c30-l1-s1", "table1", "slim", fam, 1, ratio=fam.ratio))
    plan.append(Job(f"{vgg.name}-c30-l1-2pass-s0", "table4", "slim", vgg, 0, passes=2, ratio=0.5))
    return plan


class Bench:
    def __init__(self, args):
        import keras
        import tensorflow as tf

        import kslim

        import numpy as np

        self.keras, self.tf, self.kslim, self.np = keras, tf, kslim, np
        self.args = args
        self.scale = "full" if args.full else args.scale
        self.families = SCALES[self.scale]
        self.work = pathlib.Path(args.work_dir) / self.scale
        if args.quick:
            self.work = self.work.parent / "quick"
            shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True, exist_ok=True)
        name = "cifar10_full" if args.full else "cifar10"
        self.results_path = ROOT / "benchmarks" / "results" / f"{name}.json"
        self.table_path = self.results_path.with_suffix(".md")
        self.results = _read(self.results_path) if not args.quick else None
        tf.config.experimental.enable_op_determinism()

    # Data and models.

    def data(self, seed):
        limit = 2000 if self.args.quick else None
        train = self.kslim.data.load(str(DATA), "train", batch_size=64, seed=seed, limit=limit)
        test = self.kslim.data.load(str(DATA), "test", batch_size=500, limit=500 if self.args.quick else None)
        return train, test

    def epochs(self, fam):
        return 1 if self.args.quick else fam.epochs

    def build(self, fam, seed, widths=None):
        self.keras.utils.set_random_seed(seed)
        kwargs = dict(fam.kwargs, gamma_init=0.5, bn_momentum=0.9)
        if widths is not None:
            kwargs["widths"] = widths
        return getattr(self.kslim.models, fam.builder)(**kwargs)

    def recipe(self, fam, epochs=None):
        changes = dict(fam.recipe)
        if self.args.quick:  # one epoch: no room for a warm-up
            changes.pop("warmup_epochs", None)
        return self.kslim.recipe.paper("cifar10").replace(epochs=epochs or self.epochs(fam), **changes)

    def folder(self, job, kind):
        """The work folder of `job`'s sibling job of `kind` (e.g. the l1 job an int8 job exports)."""
        return self.work / job.key.replace(f"-{job.kind if job.kind != 'slim' else 'l1'}-", f"-{kind}-")

    # Jobs.

    def run(self, job):
        folder = self.work / job.key
        start = time.time()
        print(f"== {job.key} ({job.part}, {job.kind})", flush=True)
        rows = getattr(self, f"_{job.kind}")(job, folder)
        seconds = time.time() - start
        for row in rows:
            row.update(part=job.part, job=job.key, test_images=self._test_images(),
                       synthetic_gamma=False, scale=self.scale)
            print(f"   {row['stage']:11s} pass {row['pass']}  test error {row['test_error']:6.2f}%  "
                  f"params {row['params']:>9,d}  FLOPs {row['flops']:>13,d}"
                  + (f"  LiteRT x{row['latency_speedup']:.2f}" if "latency_speedup" in row else ""), flush=True)
        return rows, seconds

    def _test_images(self):
        return 500 if self.args.quick else TEST_IMAGES

    def _train_plain(self, job, folder, model, epochs=None):
        """Trains `model` with the family's recipe (over `epochs`, default the family's), resumable; returns
        it (loaded from disk when done)."""
        keras = self.keras
        final = folder / "model.keras"
        if final.exists():
            return self.keras.saving.load_model(str(final), compile=False), None
        folder.mkdir(parents=True, exist_ok=True)
        train, _ = self.data(job.seed)
        recipe = self.recipe(job.family, epochs)
        recipe.compile(model, steps_per_epoch=int(train.cardinality()))
        start = time.perf_counter()
        model.fit(train, epochs=recipe.epochs, verbose=2, shuffle=False, callbacks=[
            keras.callbacks.BackupAndRestore(str(folder / "backup")),
            keras.callbacks.CSVLogger(str(folder / "train.csv"), append=(folder / "backup").exists()),
        ])
        seconds = time.perf_counter() - start
        tmp = folder / ".model.tmp.keras"
        model.save(tmp)
        os.replace(tmp, final)
        (folder / "seconds.json").write_text(json.dumps({"seconds": seconds}))
        return model, seconds

    def _baseline(self, job, folder):
        model, _ = self._train_plain(job, folder, self.build(job.family, job.seed))
        return [self._row(job, "baseline", 0, model, penalty="none", lam=0.0)]

    def _long(self, fam):
        """Epochs of the controls: sparsity training plus fine-tuning at converge scale; the baseline's before."""
        return 2 * self.epochs(fam) if self.scale == "converge" else self.epochs(fam)

    def _control(self, job, folder):
        epochs = self._long(job.family)
        model, _ = self._train_plain(job, folder, self.build(job.family, job.seed), epochs=epochs)
        return [self._row(job, "control", 0, model, penalty="none", lam=0.0, epochs=epochs)]

    def _scratch(self, job, folder):
        source = self.folder(job, "l1") / "pass1" / "pruned.keras"
        if not source.exists():
            raise RuntimeError(f"{job.key} needs {source}: run the table1 part first.")
        pruned = self.keras.saving.load_model(str(source), compile=False)
        widths = [layer.filters for layer in pruned.layers
                  if isinstance(layer, self.keras.layers.Conv2D)]
        epochs = self._long(job.family)
        model, _ = self._train_plain(job, folder, self.build(job.family, job.seed, widths=widths), epochs=epochs)
        return [self._row(job, "scratch", 1, model, penalty="none", lam=0.0, widths=widths, epochs=epochs)]

    def _int8(self, job, folder):
        """The file that ships: the baseline's and the fine-tuned model's int8 TFLite files, calibrated on
        training images, tested with LiteRT on every test image, timed interleaved at 1 thread."""
        load = self.keras.saving.load_model
        base = load(str(self.folder(job, "baseline") / "model.keras"), compile=False)
        tuned = load(str(self.folder(job, "l1") / "pass1" / "finetuned.keras"), compile=False)
        return self._int8_rows(job, folder, base, tuned, penalty=job.penalty, lam=job.penalty_weight)

    def _int8_rows(self, job, folder, base, tuned, **row_args):
        folder.mkdir(parents=True, exist_ok=True)
        calibration = self._calibration(job.seed)
        paths = {}
        for name, model in (("baseline", base), ("pruned", tuned)):
            paths[name] = folder / f"{name}_int8.tflite"
            if not paths[name].exists():
                # No parity bound: the file's own test error is what this measures.
                self.kslim.export(model, str(paths[name]), quantize="int8", representative_data=calibration,
                                  validation_data=self._test_arrays(500), atol=float("inf"), overwrite=True)
        sys.path.insert(0, str(ROOT / "benchmarks"))
        import deploy

        times = deploy.interleaved_latency({k: (str(p), 1, True) for k, p in paths.items()}, runs=400, block=10)
        speedup = deploy._speedup(times["baseline"], times["pruned"])
        rows = []
        for k, (name, model) in enumerate((("baseline", base), ("pruned", tuned))):
            extra = {"latency_speedup": 1.0 if k == 0 else speedup["speedup"],
                     "latency_ms": deploy._stats(times[name])}
            if k:
                extra["latency_paired_p10_p90"] = [speedup["paired_p10"], speedup["paired_p90"]]
            rows.append(self._row(job, "tflite_int8", k, model, accuracy=self._tflite_accuracy(paths[name]),
                                  epochs=0, **row_args, **extra))
        return rows

    def _litert(self, job, folder):
        """A plan for LiteRT (int8) at the FLOPs of the paper's plan, from the same sparse model, fine-tuned as
        the paper's plan was; then its int8 file as `_int8` tests it."""
        load, kslim = self.keras.saving.load_model, self.kslim
        l1 = self.folder(job, "l1") / "pass1"
        sparse = load(str(l1 / "sparse.keras"), compile=False)
        paper = kslim.profile(load(str(l1 / "pruned.keras"), compile=False)).flops
        kslim.detach(sparse)
        plan = kslim.plan(sparse, flops_target=paper / kslim.profile(sparse).flops, runtime="litert",
                          quantize="int8")
        pruned = kslim.prune(sparse, plan=plan)
        args = dict(penalty=job.penalty, lam=job.penalty_weight, plan="litert")
        rows = [self._row(job, "pruned", 1, pruned, epochs=0, **args)]
        tuned, _ = self._train_plain(job, folder, pruned)
        rows.append(self._row(job, "finetuned", 1, tuned, **args))
        base = load(str(self.folder(job, "baseline") / "model.keras"), compile=False)
        return rows + self._int8_rows(job, folder / "int8", base, tuned, **args)[1:]

    def _calibration(self, seed):
        """200 training images, as the model sees them (normalised, not augmented)."""
        data = self.kslim.data.load(str(DATA), "train", batch_size=200, seed=seed, limit=200, augment=False,
                                    shuffle=False)
        return next(iter(data))[0].numpy()

    def _test_arrays(self, limit=None):
        limit = 500 if self.args.quick else limit
        data = self.kslim.data.load(str(DATA), "test", batch_size=500, limit=limit)
        xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in data))
        return self.np.concatenate(xs), self.np.concatenate(ys)

    def _tflite_accuracy(self, path):
        from ai_edge_litert.interpreter import Interpreter

        np = self.np
        x, y = self._test_arrays()
        interpreter = Interpreter(model_path=str(path), num_threads=2)
        detail, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        batch, correct = 500, 0
        interpreter.resize_tensor_input(detail["index"], [batch, *x.shape[1:]])
        interpreter.allocate_tensors()
        for start in range(0, len(x), batch):
            chunk = x[start:start + batch]
            if len(chunk) < batch:
                interpreter.resize_tensor_input(detail["index"], list(chunk.shape))
                interpreter.allocate_tensors()
            interpreter.set_tensor(detail["index"], chunk.astype(np.float32))
            interpreter.invoke()
            correct += int((interpreter.get_tensor(out["index"]).argmax(-1) == y[start:start + batch]).sum())
        return correct / len(x)

    def _slim(self, job, folder):
        fam = job.family
        train, test = self.data(job.seed)
        penalty = self.kslim.penalties.get(job.penalty, job.penalty_weight, **BUI.get(job.penalty, {}))
        result = self.kslim.slim(
            self.build(fam, job.seed), train, test, passes=job.passes, ratio=job.ratio,
            penalty=penalty, epochs=self.epochs(fam), recipe=self.recipe(fam),
            run_dir=str(folder), plots=False, verbose=2,
        )
        rows = []
        for record in result.records:
            if record["phase"] == "initial":
                continue
            model = self.keras.saving.load_model(str(folder / record["checkpoint"]), compile=False)
            extra = {"pruned_fraction": record["pruned_fraction"], "seconds": record["seconds"]}
            if record["phase"] == "pruned":
                extra["threshold"] = record["threshold"]
            rows.append(self._row(job, record["phase"], record["pass"], model,
                                  penalty=job.penalty, lam=job.penalty_weight, accuracy=record["accuracy"],
                                  **extra))
        return rows

    def _row(self, job, stage, k, model, penalty, lam, accuracy=None, epochs=None, **extra):
        if accuracy is None:
            _, test = self.data(job.seed)
            self.recipe(job.family).compile(model, steps_per_epoch=1)
            accuracy = float(model.evaluate(test, verbose=0, return_dict=True)["accuracy"])
        cost = self.kslim.profile(model)
        if epochs is None:
            epochs = 0 if stage == "pruned" else self.epochs(job.family)
        return {
            "model": job.family.name, "family": job.family.family, "penalty": penalty, "lam": lam,
            "penalty_args": BUI.get(penalty, {}), "stage": stage, "pass": k, "seed": job.seed,
            "test_error": round(100.0 * (1.0 - accuracy), 4), "params": int(cost.trainable_params),
            "flops": int(cost.flops), "epochs": epochs, "ratio": job.ratio, **extra,
        }

    # Results.

    def record(self, job, rows, seconds):
        if self.results is None:
            return
        self.results["rows"] = [r for r in self.results["rows"] if r["job"] != job.key] + rows
        self.results["jobs"][job.key] = {"seconds": seconds, "finished": time.strftime("%Y-%m-%d %H:%M")}
        self.results["machine"] = _machine()
        settings = {
            "scale": self.scale,
            "families": {k: dataclasses.asdict(f) | {"lam": f.lam} for k, f in self.families.items()},
            "seeds": list(SEEDS), "penalties": BUI, "paper": PAPER,
            "deviations": {"full": [], "cpu": DEVIATIONS_CPU, "converge": DEVIATIONS_CONVERGE}[self.scale],
            "data": "CIFAR-10 JPEG copy (quality 75, lossy), 50,000 train / 10,000 test, paper augmentation",
        }
        if self.scale == "converge":  # the short runs' settings stay where they were
            self.results["settings_converge"] = settings
        else:
            self.results["settings"] = settings
        self.results_path.parent.mkdir(exist_ok=True)
        _write_atomic(self.results_path, json.dumps(self.results, indent=1) + "\n")
        _write_atomic(self.table_path, table(self.results) + "\n\n" + table(self.results, "converge") + "\n")
        if self.args.commit:
            _commit([self.results_path, self.table_path], f"cifar10 benchmark: {job.key} done")


def _machine():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import _common

    return _common.machine()


def _read(path):
    if path.exists():
        data = json.loads(path.read_text())
        data.setdefault("jobs", {})
        return data
    return {"rows": [], "jobs": {}}


def _write_atomic(path, text):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _commit(paths, message):
    """Commits only `paths` (other staged or unstaged work is left alone); retries while git is busy."""
    names = [str(p.relative_to(ROOT)) for p in paths]
    for attempt in range(30):
        add = subprocess.run(["git", "add", "--", *names], cwd=ROOT, capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "commit", "-q", "-m", message, "--", *names], cwd=ROOT, capture_output=True, text=True,
        ).returncode == 0
        if done:
            return
        time.sleep(10)
    print(f"warning: could not commit {names}; commit them by hand", flush=True)


def _mean_sd(values):
    import statistics

    if not values:
        return None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, sd


def _fmt(values, digits=2):
    stats = _mean_sd(values)
    if stats is None:
        return "—"
    mean, sd = stats
    text = f"{mean:.{digits}f}"
    if len(values) > 1:
        text += f" ± {sd:.{digits}f} ({', '.join(f'{v:.{digits}f}' for v in values)})"
    return text


def table(results, scale="cpu"):
    """The README's tables, from the results file's rows of one scale (rows without one are the short runs')."""
    if scale == "converge":
        return converge_table(results)
    rows = [r for r in results.get("rows", []) if r.get("scale", "cpu") == scale or scale == "full"]
    settings = results.get("settings", {})
    lines = []
    machine = results.get("machine", {})
    if machine:
        lines.append(f"Measured with `python benchmarks/cifar10_paper.py` ({machine.get('date')}, "
                     f"{machine.get('platform')}, {machine.get('cpu_count')} CPU cores, TensorFlow "
                     f"{machine.get('tensorflow')}, Keras {machine.get('keras')}); {len(results['jobs'])} "
                     f"jobs finished, {sum(j['seconds'] for j in results['jobs'].values()) / 3600:.1f} h "
                     "of training. Test error on all 10,000 test images, mean ± sd over seeds (values).")
        lines.append("")

    def pick(**want):
        return [r for r in rows if all(r.get(k) == v for k, v in want.items())]

    lines += ["**Table 1** (L1, one pass; pruned = before fine-tuning)", "",
              "| model | stage | test error % | params | FLOPs | params removed | FLOPs removed | paper |",
              "|---|---|---|---|---|---|---|---|"]
    for family in ("vgg", "preresnet", "densenet"):
        base = pick(family=family, stage="baseline", part="table1")
        if not base:
            continue
        p0, f0 = base[0]["params"], base[0]["flops"]
        paper = settings.get("paper", PAPER)[family]
        for stage in ("baseline", "sparse", "pruned", "finetuned"):
            got = pick(family=family, stage=stage, part="table1")
            if not got:
                continue
            errors = [r["test_error"] for r in sorted(got, key=lambda r: r["seed"])]
            params, flops = got[0]["params"], got[0]["flops"]
            ref = {"baseline": f"{paper['model']} {paper['baseline']}%",
                   "finetuned": f"{paper['pruned']}% at -{paper['params_removed']}% params, "
                                f"-{paper['flops_removed']}% FLOPs"}.get(stage, "")
            lines.append(f"| {got[0]['model']} | {stage} | {_fmt(errors)} | {params:,} | {flops:.3g} | "
                         f"{100 * (1 - params / p0):.1f}% | {100 * (1 - flops / f0):.1f}% | {ref} |")
    lams = [r for r in rows if r["family"] == "vgg" and r["seed"] == 0 and r["part"] in ("table1", "lambda")
            and r["stage"] != "baseline"]
    if any(r["part"] == "lambda" for r in lams):
        base = pick(family="vgg", stage="baseline", part="table1", seed=0)
        lines += ["", "**Penalty weight** (L1, VGG, seed 0, pruned 70%; the paper's lambda is 1e-4 over 160 epochs)",
                  "", "| lambda | sparse | pruned (before fine-tuning) | fine-tuned | params removed |",
                  "|---|---|---|---|---|"]
        for lam in sorted({r["lam"] for r in lams}, reverse=True):
            got = {r["stage"]: r for r in lams if r["lam"] == lam}
            cell = {s: (f"{got[s]['test_error']:.2f}%" if s in got else "—")
                    for s in ("sparse", "pruned", "finetuned")}
            removed = (f"{100 * (1 - got['pruned']['params'] / base[0]['params']):.1f}%"
                       if "pruned" in got and base else "—")
            lines.append(f"| {lam:g} | {cell['sparse']} | {cell['pruned']} | {cell['finetuned']} | {removed} |")
    scratch = pick(stage="scratch")
    if scratch:
        lines += ["", "**Rethinking the value of pruning** (pruned VGG widths, trained from scratch, as many "
                  "epochs as the baseline)", "",
                  "| model | test error % | params | vs fine-tuned (seed 0) |", "|---|---|---|---|"]
        for r in scratch:
            ft = pick(job=r["job"].replace("-scratch-", "-l1-"), stage="finetuned")
            versus = f"{ft[0]['test_error']:.2f}%" if ft else "—"
            lines.append(f"| {r['model']} | {r['test_error']:.2f} | {r['params']:,} | {versus} |")
    multi = pick(part="table4")
    if multi:
        base = pick(family="vgg", stage="baseline", part="table1", seed=0)
        p0 = base[0]["params"] if base else None
        f0 = base[0]["flops"] if base else None
        lines += ["", "**Table 4** (multi-pass, VGG, 50% of the channels per pass, at most 50% of a layer)", "",
                  "| pass | stage | test error % | params | FLOPs | params removed | FLOPs removed |",
                  "|---|---|---|---|---|---|---|"]
        for r in sorted(multi, key=lambda r: (r["pass"], ("sparse", "pruned", "finetuned").index(r["stage"]))):
            removed = (f"{100 * (1 - r['params'] / p0):.1f}% | {100 * (1 - r['flops'] / f0):.1f}%"
                       if p0 else "— | —")
            lines.append(f"| {r['pass']} | {r['stage']} | {r['test_error']:.2f} | {r['params']:,} | "
                         f"{r['flops']:.3g} | {removed} |")
    bui = [r for r in rows if r["part"] == "bui" or (r["part"] == "table1" and r["family"] == "vgg"
                                                     and r["seed"] == 0 and r["stage"] != "baseline")]
    if any(r["part"] == "bui" for r in bui):
        lines += ["", "**Penalties** (Bui et al.; VGG, seed 0, pruned 70%)", "",
                  "| penalty | sparse | pruned (before fine-tuning) | fine-tuned | params removed |",
                  "|---|---|---|---|---|"]
        base = pick(family="vgg", stage="baseline", part="table1", seed=0)
        for name in ["l1", *BUI]:
            got = {r["stage"]: r for r in bui if r["penalty"] == name}
            if not got:
                continue
            cell = {s: (f"{got[s]['test_error']:.2f}%" if s in got else "—")
                    for s in ("sparse", "pruned", "finetuned")}
            removed = (f"{100 * (1 - got['pruned']['params'] / base[0]['params']):.1f}%"
                       if "pruned" in got and base else "—")
            lines.append(f"| {name} | {cell['sparse']} | {cell['pruned']} | {cell['finetuned']} | {removed} |")
    return "\n".join(lines)


def converge_table(results):
    """The converging runs' tables: Table 1 beside the paper's, the int8 files, the controls and the plans for
    LiteRT, and per family whether the paper's claim holds (fine-tuned within 0.5 points of the baseline)."""
    rows = [r for r in results.get("rows", []) if r.get("scale") == "converge"]
    if not rows:
        return ""
    settings = results.get("settings_converge", {})

    def pick(**want):
        return sorted((r for r in rows if all(r.get(k) == v for k, v in want.items())), key=lambda r: r["seed"])

    lines = ["**Converging runs** (30 epochs per stage, cosine schedule; test error on all 10,000 test images, "
             "mean ± sd over seeds (values))", "", "Deviations from the paper:", ""]
    lines += [f"- {d}" for d in settings.get("deviations", DEVIATIONS_CONVERGE)]
    lines += ["", "| model | stage | plan | seeds | test error % | params | FLOPs | params removed | FLOPs removed "
              "| LiteRT int8 speed-up | paper |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for family in ("vgg", "preresnet", "densenet"):
        base = pick(family=family, stage="baseline")
        if not base:
            continue
        p0, f0, paper = base[0]["params"], base[0]["flops"], PAPER[family]
        for stage, part, plan in (("baseline", "table1", None), ("sparse", "table1", None),
                                  ("pruned", "table1", None), ("finetuned", "table1", None),
                                  ("tflite_int8", "int8", None), ("control", "control", None),
                                  ("scratch", "scratch", None), ("pruned", "litert", "litert"),
                                  ("finetuned", "litert", "litert"), ("tflite_int8", "litert", "litert")):
            got = [r for r in pick(family=family, stage=stage, part=part) if r.get("plan") == plan
                   and (stage != "tflite_int8" or r["pass"] == 1)]
            if not got:
                continue
            ref = {"baseline": f"{paper['model']} {paper['baseline']}%",
                   "finetuned": f"{paper['pruned']}% at -{paper['params_removed']}% params, "
                                f"-{paper['flops_removed']}% FLOPs"}.get(stage if plan is None else "", "")
            speed = ", ".join(f"{r['latency_speedup']:.2f}x" for r in got if "latency_speedup" in r) or ""
            lines.append(f"| {got[0]['model']} | {stage} | {plan or 'paper'} | {len(got)} | "
                         f"{_fmt([r['test_error'] for r in got])} | {got[0]['params']:,} | {got[0]['flops']:.3g} | "
                         f"{100 * (1 - got[0]['params'] / p0):.1f}% | {100 * (1 - got[0]['flops'] / f0):.1f}% | "
                         f"{speed} | {ref} |")
        tuned = pick(family=family, stage="finetuned", part="table1")
        if tuned:
            seeds = {r["seed"] for r in tuned}
            b = [r["test_error"] for r in base if r["seed"] in seeds]
            t = [r["test_error"] for r in tuned]
            gap = sum(t) / len(t) - sum(b) / len(b)
            verdict = (f"{base[0]['model']}: fine-tuned {sum(t) / len(t):.2f}% against a {sum(b) / len(b):.2f}% "
                       f"baseline ({gap:+.2f} points, {len(t)} seed{'s' * (len(t) > 1)}): the paper's claim "
                       f"{'holds' if gap <= 0.5 else 'does not hold'} at this scale")
            int8 = [r for r in pick(family=family, stage="tflite_int8", part="int8") if r["pass"] == 1]
            if int8:
                e = sum(r["test_error"] for r in int8) / len(int8)
                verdict += (f"; its int8 file: {e:.2f}% ({e - sum(b) / len(b):+.2f} points against the float32 "
                            f"baseline), so it {'holds' if e - sum(b) / len(b) <= 0.5 else 'does not hold'} "
                            "for the file that ships")
            verdicts.append(verdict + ".")
    if verdicts:
        lines += [""] + [f"- {v}" for v in verdicts]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    parser.add_argument("--full", action="store_true", help="the paper's networks and epochs (160 per stage)")
    parser.add_argument("--scale", default="converge", choices=("converge", "cpu"),
                        help="converge: 30 epochs per stage with a cosine schedule (default); cpu: the short "
                             "runs of 5-10 epochs per stage")
    parser.add_argument("--quick", action="store_true", help="smoke test on 2,000 images, 1 epoch per stage")
    parser.add_argument("--table", action="store_true", help="print the tables of the results file and stop")
    parser.add_argument("--commit", action="store_true", help="git-commit the results file after every job")
    parser.add_argument("--cache", default="", metavar="JOBS",
                        help="comma-separated job keys to run into --work_dir again without recording them "
                             "(the trained models that benchmarks/deploy.py reads, on a new machine)")
    parser.add_argument("--work_dir", default=str(ROOT / "benchmarks" / ".cache" / "cifar10"),
                        help="checkpoints and trained models (outside git)")
    args = parser.parse_args()
    parts = [p for p in args.only.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--only: unknown parts {unknown}; choose from {', '.join(PARTS)}")
    if args.table:
        name = "cifar10_full.json" if args.full else "cifar10.json"
        print(table(_read(ROOT / "benchmarks" / "results" / name), "full" if args.full else args.scale))
        return
    if not DATA.exists():
        parser.error(f"{DATA} not found: this benchmark reads the CIFAR-10 JPEG tarball from ../shared/data/")
    if args.quick and args.commit:
        parser.error("--quick writes no results; drop --commit")
    bench = Bench(args)
    if args.cache:
        known = {job.key: job for job in jobs(bench.families, bench.scale)}
        keys = [k for k in args.cache.split(",") if k]
        unknown = sorted(set(keys) - set(known))
        if unknown:
            parser.error(f"--cache: unknown jobs {unknown}; choose from {sorted(known)}")
        for key in keys:
            bench.run(known[key])
        return
    for job in jobs(bench.families, bench.scale):
        if job.part not in parts:
            continue
        if bench.results is not None and job.key in bench.results["jobs"]:
            print(f"== {job.key}: done", flush=True)
            continue
        rows, seconds = bench.run(job)
        bench.record(job, rows, seconds)
    if bench.results is not None:
        print("\n" + table(bench.results, bench.scale))


if __name__ == "__main__":
    main()
