"""`slim`: multi-pass network slimming (sparsity training, pruning, fine-tuning), resumable."""

import contextlib
import dataclasses
import os
import shutil
import time
import warnings

import keras
import numpy as np

from kslim.slimming import run_dir as _run_dir
from kslim import penalties
from kslim.sparsity.factors import how_to_add_factors, scaling_factors
from kslim.sparsity.attachment import attach
from kslim.sparsity.attachment import detach
from kslim.callbacks.sparsity_monitor import SparsityMonitor
from kslim.profiling import profile
from kslim.pruning.budget import Budget
from kslim.pruning.pruner import prune_and_plan
from kslim.training.divergence import StopOnDivergence
from kslim.training.recipe import Recipe
from kslim._internal import keras_api
from kslim._internal.checks import check_int, check_number
from kslim._internal.formatting import fewer as _fewer
from kslim._internal.formatting import first_line
from kslim._internal.formatting import human as _human

_PHASES = ("sparse", "pruned", "finetuned")
_PLAN_ARGS = ("min_channels", "round_to", "round_inputs_to", "exclude")
_PRUNE_ARGS = _PLAN_ARGS + ("compensate",)
_LABELS = {
    "sparse": "sparsity training",
    "pruned": "pruning",
    "finetuned": "fine-tuning",
}


def slim(
    model,
    train_data,
    test_data=None,
    passes=1,
    ratio=0.5,
    lam=1e-4,
    penalty="l1",
    epochs=None,
    finetune_epochs=None,
    recipe=None,
    max_layer_ratio=None,
    run_dir=None,
    strategy=None,
    callbacks=(),
    plots=True,
    verbose=1,
    **prune_args,
):
    """Slims a model: sparsity training, pruning and fine-tuning, repeated `passes` times.

    This is the whole method of network slimming in one call. Each pass
    (1) trains with the sparsity penalty on every channel scaling factor
    (`kslim.attach`, with `kslim.callbacks.SparsityMonitor` in the logs),
    (2) prunes the `ratio` of channels with the smallest factors into a new,
    narrower model (`kslim.plan` + `kslim.prune`), and (3) fine-tunes it
    without the penalty. Both trainings use `recipe`'s optimizer and
    learning-rate schedule, the schedule stretched over `epochs` and
    `finetune_epochs` respectively (the paper's fine-tuning repeats the training
    schedule). `ratio` is a fraction of the channels the model has at the start
    of each pass, so two passes at 0.5 keep about a quarter of them; with more
    than one pass no layer loses more than `max_layer_ratio` (0.5, the paper's
    rule) of its channels in one pass.

    After every phase, `slim` records the test accuracy (with `test_data`),
    params and FLOPs (`kslim.profile`), the fraction of the starting model's
    channels pruned so far, and the phase's wall time. With a `run_dir` it
    keeps everything there: `run.json` (the arguments), `metrics.json` (the
    records), `initial.keras`, `pass{k}/sparse.keras`, `pass{k}/plan.json`,
    `pass{k}/pruned.keras`, `pass{k}/finetuned.keras`, the epoch logs
    `pass{k}/sparse.csv` and `pass{k}/finetune.csv`, the scaling factors before
    and after sparsity training (`pass{k}/gammas.npz`) and, with `plots`, PNG
    plots (`kslim.plots.plot_run`).

    Resuming: call `slim` again with the same arguments and `run_dir` after an
    interruption (Ctrl-C, a crash, a preempted machine) and it goes on where it
    stopped. Finished phases are skipped and the model is loaded from the last
    phase's checkpoint; an interrupted training phase restarts from its last
    finished epoch (Keras's `BackupAndRestore`, weights and optimizer state
    included). A torn or corrupt file in the folder (a mid-phase backup, a
    checkpoint, `metrics.json`) is discarded with a warning that names it,
    and its phase is run again from the last good checkpoint.
    A resumed run reproduces the uninterrupted one bit for bit on the same
    machine: weights, optimizer state and step count (so the learning-rate
    schedule) come from the backup, and the data order too, since `slim`
    replays the passes over `train_data` that the uninterrupted run had
    drawn. That needs `train_data` to be freshly made, as it is in a new
    process (a seeded `kslim.data.load`); replaying costs one batch per
    skipped pass.
    A `run_dir` made with other arguments is refused, naming the argument.
    A finished run returns at once, with its final model.

    `model` is not modified: `slim` trains a copy. With a `strategy`
    (`tf.distribute`), the copy, the pruned models and the reloaded
    checkpoints are all built and compiled in its scope. Keras 3's `fit`
    does not train under a `MultiWorkerMirroredStrategy` of two or more
    workers (keras-team/keras#20585), so use `MirroredStrategy` for the
    devices of one machine; the command line refuses such a cluster.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, sections 3.3 and 5 (multi-pass scheme).

    Args:
        model: a built functional or Sequential `keras.Model` with channel
            scaling factors (BatchNormalization, or `kslim.add_channel_masks`)
            that outputs logits (or ends with a softmax).
        train_data: a batched `tf.data.Dataset` (e.g. `kslim.data.load`) or a
            `keras.utils.PyDataset` of `(inputs, integer labels)` with a
            known number of batches.
        test_data: optional, like `train_data`; evaluated after every phase.
        passes: int >= 1, how many times to train, prune and fine-tune.
        ratio: float in (0, 1), the fraction of the channels pruned per pass,
            by one global threshold on |scaling factor|.
        lam: float >= 0, the penalty weight (1e-4 for VGG, 1e-5 for ResNet and
            DenseNet in the paper); used when `penalty` is a name.
        penalty: a name from `kslim.penalties.names()` or a
            `kslim.penalties.Penalty` instance.
        epochs: int >= 1, sparsity-training epochs per pass; `recipe.epochs`
            when None.
        finetune_epochs: int >= 1, fine-tuning epochs per pass; `epochs` when
            None.
        recipe: a `kslim.recipe.Recipe` (optimizer, schedule, weight decay);
            `Recipe()`, the paper's CIFAR recipe, when None. Its `batch_size`
            is not used: the datasets are already batched.
        max_layer_ratio: float in (0, 1] or None, the largest fraction of one
            layer's channels pruned in one pass; None means 0.5 when
            `passes > 1` and no cap otherwise.
        run_dir: optional str, the folder for checkpoints, metrics and plots;
            without it nothing is written and nothing can be resumed.
        strategy: optional `tf.distribute.Strategy` to train under.
        callbacks: Keras callbacks added to every training phase.
        plots: bool, draw PNG plots into `run_dir` at the end of the run
            (needs matplotlib, the `kslim[plots]` extra; checked first).
        verbose: 0 (silent), 1 (progress lines, plans, progress bars) or 2
            (progress lines, plans, one line per epoch).
        **prune_args: `min_channels`, `round_to`, `round_inputs_to`, `exclude` (see `kslim.plan`)
            and `compensate` (see `kslim.prune`).

    Returns:
        A `SlimResult`: `.model` (the final fine-tuned model, compiled),
        `.records` (the list of phase records, as in `metrics.json`) and
        `.run_dir`; `str(result)` is a one-line before -> after summary.

    Raises:
        TypeError: for arguments of the wrong type, or unknown `prune_args`.
        ValueError: for values out of range, data with an unknown number of
            batches, a model without scaling factors, or a `run_dir` that holds
            another run.
        ImportError: with `plots` and a `run_dir` but no matplotlib.

    Example:

    >>> train = kslim.data.load("mnist", batch_size=256)
    >>> test = kslim.data.load("mnist", "test", batch_size=1000)
    >>> result = kslim.slim(kslim.models.get("mlp"), train, test, passes=2, ratio=0.5,
    ...                     lam=1e-3, epochs=10, recipe=kslim.recipe.paper("mnist"),
    ...                     run_dir="runs/mlp")
    >>> print(result)
    """
    _check_model(model)
    passes = check_int("passes", passes, where="slim")
    ratio = check_number("ratio", ratio, low=0, high=1, high_open=True, where="slim",
                         hint="the fraction of channels pruned in each pass (0.5 prunes half)")
    lam = check_number("lam", lam, low=0, where="slim", hint="1e-4 in the paper for VGG")
    reg = penalties.get(penalty, lam)
    if recipe is None:
        recipe = Recipe()
    if not isinstance(recipe, Recipe):
        raise TypeError(
            f"slim: recipe must be a kslim.recipe.Recipe, got {type(recipe).__name__}; use "
            "kslim.recipe.paper(dataset) or kslim.recipe.Recipe(...)."
        )
    epochs = recipe.epochs if epochs is None else check_int("epochs", epochs, where="slim")
    finetune_epochs = (
        epochs if finetune_epochs is None
        else check_int("finetune_epochs", finetune_epochs, where="slim")
    )
    if max_layer_ratio is None and passes > 1:
        max_layer_ratio = 0.5
    max_layer_ratio = check_number(
        "max_layer_ratio", max_layer_ratio, low=0, high=1, low_open=True, where="slim",
        hint="0.5 in the paper's multi-pass scheme, or None", allow_none=True,
    )
    unknown = sorted(set(prune_args) - set(_PRUNE_ARGS))
    if unknown:
        raise TypeError(
            f"slim got unknown arguments {unknown}; the pruning arguments are {list(_PRUNE_ARGS)}."
        )
    if isinstance(prune_args.get("exclude"), str):
        prune_args["exclude"] = [prune_args["exclude"]]
    if "exclude" in prune_args:
        prune_args["exclude"] = sorted(prune_args["exclude"])
    callbacks = _check_callbacks(callbacks)
    if verbose not in (0, 1, 2):
        raise ValueError(f"slim: verbose={verbose!r}; use 0, 1 or 2.")
    if plots not in (True, False):
        raise TypeError(f"slim: plots must be True or False, got {plots!r}.")
    if not scaling_factors(model):
        raise ValueError(
            f"slim: model '{model.name}' has no trainable channel scaling factor: {how_to_add_factors(model)}."
        )
    steps = _batches(train_data, "train_data")
    test_steps = None if test_data is None else _batches(test_data, "test_data")
    if plots and run_dir is not None:
        from kslim.slimming import plots as plotting

        plotting.check_matplotlib()

    arguments = {
        "model": {
            "name": model.name,
            "params": int(model.count_params()),
            "layers": len(model.layers),
        },
        "train_batches": steps,
        "test_batches": test_steps,
        "passes": passes,
        "ratio": ratio,
        "penalty": {"class": reg.name(), **reg.get_config()},
        "epochs": epochs,
        "finetune_epochs": finetune_epochs,
        "recipe": recipe.get_config(),
        "max_layer_ratio": max_layer_ratio,
        "prune_args": dict(sorted(prune_args.items())),
    }
    run = _run_dir.RunDir(run_dir)
    records = run.open(arguments)  # locks the folder: one run at a time
    try:
        job = _Job(
            run, train_data, test_data, steps, passes, ratio, reg, epochs, finetune_epochs, recipe,
            max_layer_ratio, prune_args, strategy, callbacks, plots, verbose,
        )
        return job.execute(model, records)
    finally:
        run.close()


@dataclasses.dataclass
class SlimResult:
    """What `kslim.slim` returns.

    Attributes:
        model: the final fine-tuned `keras.Model`, compiled.
        records: list of dicts, one per phase (`pass`, `phase`, `accuracy`,
            `params`, `flops`, `channels`, `pruned_fraction`, `seconds`,
            `finished`, `checkpoint`, ...), as in the run's `metrics.json`.
        run_dir: the run folder, or None.
    """

    model: object
    records: list
    run_dir: str = None

    def __str__(self):
        return _summary_line(self.records)

    def __repr__(self):
        return f"<SlimResult: {_summary_line(self.records)}>"


def _summary_line(records):
    """One line: params, FLOPs and accuracy before -> after, for a list of phase records."""
    first, last = records[0], records[-1]
    trained = next((r for r in records if r["phase"] == "sparse"), first)
    passes = max(r["pass"] for r in records)
    text = (
        f"slimmed in {passes} pass{'es' if passes != 1 else ''}: "
        f"params {_human(first['params'])} -> {_human(last['params'])} "
        f"({_fewer(first['params'], last['params'])}), "
        f"FLOPs {_human(first['flops'])} -> {_human(last['flops'])} "
        f"({_fewer(first['flops'], last['flops'])}), "
        f"channels {first['channels']} -> {last['channels']}"
    )
    if trained.get("accuracy") is not None and last.get("accuracy") is not None:
        text += (
            f", test accuracy {100 * trained['accuracy']:.2f}% (trained, unpruned) -> "
            f"{100 * last['accuracy']:.2f}%"
        )
    seconds = sum(r.get("seconds", 0.0) for r in records)
    return text + f", {seconds:.0f} s of training and pruning"


class _Job:
    """One call of `slim`: runs the phases that `records` does not list yet."""

    def __init__(self, folder, train_data, test_data, steps, passes, ratio, reg, epochs,
                 finetune_epochs, recipe, max_layer_ratio, prune_args, strategy, callbacks,
                 plots, verbose):
        self.folder = folder
        self.train_data = train_data
        self.test_data = test_data
        self.steps = steps
        self.passes = passes
        self.ratio = ratio
        self.reg = reg
        self.epochs = epochs
        self.finetune_epochs = finetune_epochs
        self.recipe = recipe
        self.max_layer_ratio = max_layer_ratio
        self.plan_args = {k: v for k, v in prune_args.items() if k in _PLAN_ARGS}
        self.compensate = prune_args.get("compensate", True)
        self.strategy = strategy
        self.callbacks = callbacks
        self.plots = plots
        self.verbose = verbose

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def execute(self, model, records):
        sequence = [(0, "initial")] + [(k, p) for k in range(1, self.passes + 1) for p in _PHASES]
        done = [(r.get("pass"), r.get("phase")) for r in records]
        if done != sequence[: len(done)]:
            raise ValueError(
                f"run_dir {self.folder.path} is damaged: its {_run_dir.METRICS_FILE} lists the phases "
                f"{done}, not a start of {sequence}; delete {self.folder.path} to start over."
            )
        with self.scope():
            current = self._last_good(records)
            if current is None:
                current = keras.models.clone_model(model)
                current.set_weights(model.get_weights())
        done = done[: len(records)]
        # A resumed run gets a new dataset, whose shuffling and augmentation start again at their first
        # epoch: pass over as many epochs as the uninterrupted run had drawn, so the order is the same.
        self.skip = sum(self.epochs if p == "sparse" else self.finetune_epochs
                        for _, p in done if p in ("sparse", "finetuned"))
        if len(done) == len(sequence):
            self.say(f"run_dir {self.folder.path} holds a finished run; loading its final model")
            self.compile(current, self.finetune_epochs)
        elif done:
            k, phase = done[-1]
            after = f"{_LABELS[phase]} of pass {k}" if k else "its start"
            self.say(f"resuming {self.folder.path} after {after}")
        for k, phase in sequence[len(done):]:
            if phase != "initial":
                self.say(f"pass {k}/{self.passes}: {_LABELS[phase]} ...")
            current = getattr(self, f"_{phase}")(current, k)
        if self.plots and self.folder.path is not None:
            from kslim.slimming import plots as plotting

            plotting.plot_run(self.folder.path)
        return SlimResult(current, self.folder.records, self.folder.path)

    def _last_good(self, records):
        """The model of the last phase whose checkpoint loads; damaged ones are dropped, to redo."""
        while records and records[-1]["checkpoint"]:
            try:
                return self.folder.load_model(records[-1]["checkpoint"])
            except (ValueError, OSError) as error:
                record = records[-1]
                warnings.warn(
                    f"{self.folder.join(record['checkpoint'])} is damaged ({first_line(error)}); "
                    f"discarding it and running {_LABELS.get(record['phase'], record['phase'])} of "
                    f"pass {record['pass']} again.",
                    stacklevel=4,
                )
                self.folder.drop_last()
        return None

    # Phases. Each returns the model it ends with and records itself.

    def _initial(self, model, k):
        # Saved so that a run interrupted in its first phase resumes from the same weights.
        checkpoint = "initial.keras"
        self.folder.save_model(checkpoint, model)
        self.compile(model, self.epochs)
        self.record(model, k, "initial", 0.0, checkpoint)
        return model

    def _sparse(self, model, k):
        attach(model, penalty=self.reg)
        self.compile(model, self.epochs)
        before = _gammas(model)
        start = time.perf_counter()
        history = self.fit(model, self.epochs, k, "sparse", [SparsityMonitor(ratio=self.ratio)])
        seconds = time.perf_counter() - start
        self.folder.save_arrays(f"pass{k}/gammas.npz", before=before, after=_gammas(model))
        checkpoint = f"pass{k}/sparse.keras"
        self.folder.save_model(checkpoint, model)
        logs = {key: float(values[-1]) for key, values in history.history.items()
                if key in ("sparsity", "penalty", "mean_abs_gamma", "ratio_threshold") and values}
        self.record(model, k, "sparse", seconds, checkpoint, **logs)
        return model

    def _pruned(self, model, k):
        start = time.perf_counter()
        budget = Budget(ratio=self.ratio, max_layer_ratio=self.max_layer_ratio, **self.plan_args)
        with self.scope():
            plan, pruned = prune_and_plan(model, budget=budget, compensate=self.compensate)
            detach(pruned)
        self.compile(pruned, self.finetune_epochs)
        seconds = time.perf_counter() - start
        self.folder.write_text(f"pass{k}/plan.json", plan.to_json())
        checkpoint = f"pass{k}/pruned.keras"
        self.folder.save_model(checkpoint, pruned)
        if self.verbose:
            print(plan.summary(print_fn=False))
        self.record(
            pruned, k, "pruned", seconds, checkpoint,
            plan=None if self.folder.path is None else f"pass{k}/plan.json",
            threshold=float(plan.threshold),
            pass_pruned_fraction=float(plan.pruned_fraction),
            channels=plan.factors[0] - plan.factors[1],  # folded masks leave no factor to count
        )
        return pruned

    def _finetuned(self, model, k):
        detach(model)  # the pruned model has no penalty; this only makes sure
        self.compile(model, self.finetune_epochs)
        start = time.perf_counter()
        self.fit(model, self.finetune_epochs, k, "finetune", [])
        seconds = time.perf_counter() - start
        checkpoint = f"pass{k}/finetuned.keras"
        self.folder.save_model(checkpoint, model)
        self.record(model, k, "finetuned", seconds, checkpoint)
        return model

    # Helpers.

    def compile(self, model, epochs):
        with self.scope():
            self.recipe.replace(epochs=epochs).compile(
                model, steps_per_epoch=self.steps, from_logits=not _ends_in_softmax(model)
            )

    def fit(self, model, epochs, k, name, extra):
        lam = f" or lam ({self.reg.lam:g})" if name == "sparse" and getattr(self.reg, "lam", 0) else ""
        callbacks = [StopOnDivergence(f"lower the recipe's learning rate (lr={self.recipe.lr:g}){lam}")]
        callbacks += list(extra)
        if self.folder.path is not None:
            backup = self.folder.join(f"pass{k}/{name}.backup")
            damage = _run_dir.backup_damage(backup) if os.path.isdir(backup) else None
            if damage is not None:
                warnings.warn(
                    f"The mid-phase backup {backup} is damaged ({damage}); discarding it and "
                    f"starting {_LABELS['finetuned' if name == 'finetune' else name]} of pass {k} "
                    "again from the last finished phase.",
                    stacklevel=4,
                )
                shutil.rmtree(backup)
            resuming = os.path.isdir(backup)
            if self.skip or resuming:
                self.skip += _run_dir.backup_epoch(backup) if resuming else 0
                _fast_forward(self.train_data, keras_api.FIT_PASSES_PER_EPOCH * self.skip)
                self.skip = 0
            os.makedirs(self.folder.join(f"pass{k}"), exist_ok=True)
            callbacks += [
                keras.callbacks.CSVLogger(self.folder.join(f"pass{k}/{name}.csv"), append=resuming),
                keras.callbacks.BackupAndRestore(backup),
            ]
        return model.fit(
            self.train_data,
            epochs=epochs,
            callbacks=callbacks + self.callbacks,
            verbose=self.verbose,
            shuffle=False,  # the dataset shuffles itself; Keras would only warn
        )

    def record(self, model, k, phase, seconds, checkpoint, **extra):
        cost = profile(model)
        channels = extra.pop("channels", None)
        if channels is None:
            channels = sum(int(np.prod(v.shape)) for _, v in scaling_factors(model))
            if not channels and self.folder.records:
                # A model whose ChannelMasks were folded into its weights keeps the channels the
                # last prune left, though nothing scores them any more.
                channels = self.folder.records[-1]["channels"]
        start = self.folder.records[0]["channels"] if self.folder.records else channels
        accuracy = None
        if self.test_data is not None:
            results = model.evaluate(self.test_data, verbose=0, return_dict=True)
            accuracy = float(results["accuracy"])
        record = {
            "pass": k,
            "phase": phase,
            "accuracy": accuracy,
            "params": int(cost.params),
            "flops": int(cost.flops),
            "channels": channels,
            "pruned_fraction": 1.0 - channels / start if start else 0.0,
            "seconds": round(seconds, 3),
            "finished": time.time(),
            "checkpoint": checkpoint if self.folder.path is not None else None,
            **extra,
        }
        self.folder.add(record)
        if self.verbose:
            acc = "" if accuracy is None else f"test accuracy {100 * accuracy:.2f}%, "
            self.say(
                (f"pass {k}/{self.passes}: {phase}: " if k else "start: ")
                + f"{acc}params {_human(record['params'])}, FLOPs {_human(record['flops'])}, "
                f"channels {channels} ({100 * record['pruned_fraction']:.1f}% pruned)"
                + (f", {seconds:.1f} s" if k else "")
            )

    def say(self, text):
        if self.verbose:
            print(text, flush=True)


def _fast_forward(data, epochs):
    """Starts `epochs` passes over `data` and drops them, advancing its shuffling and augmentation."""
    for _ in range(epochs):
        iterator = iter(data)
        next(iterator, None)
        del iterator


def _gammas(model):
    values = [np.ravel(keras.ops.convert_to_numpy(v.value)) for _, v in scaling_factors(model)]
    return np.concatenate(values) if values else np.zeros((0,), "float32")


def _ends_in_softmax(model):
    last = model.layers[-1] if model.layers else None
    return isinstance(last, keras.layers.Softmax) or (
        getattr(last, "activation", None) is keras.activations.softmax
    )


def _batches(data, name):
    if data is None:
        raise ValueError(f"slim: {name} is None; pass a batched dataset, e.g. kslim.data.load('mnist').")
    count = None
    if hasattr(data, "cardinality"):
        count = int(data.cardinality())
    elif hasattr(data, "__len__"):
        count = len(data)
    else:
        raise TypeError(
            f"slim: {name} must be a batched tf.data.Dataset or a keras.utils.PyDataset, got "
            f"{type(data).__name__}; wrap arrays with kslim.data.load or tf.data.Dataset."
            "from_tensor_slices(...).batch(n)."
        )
    if count < 1:
        raise ValueError(
            f"slim: {name} has {'an unknown number of' if count < 0 else 'no'} batches "
            f"(cardinality {count}); the learning-rate schedule needs a finite, known count: "
            "use dataset.apply(tf.data.experimental.assert_cardinality(n)) or drop .repeat()."
        )
    return count


def _check_model(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"slim expects a keras.Model as its first argument, got {type(model).__name__}.")
    if not model.built or not getattr(model, "inputs", None):
        raise ValueError(
            f"slim: model '{model.name}' is not a built functional or Sequential model; build it "
            "with keras.Input (kslim cannot analyse subclassed models)."
        )


def _check_callbacks(callbacks):
    if isinstance(callbacks, keras.callbacks.Callback):
        callbacks = [callbacks]
    callbacks = list(callbacks or ())
    for c in callbacks:
        if not isinstance(c, keras.callbacks.Callback):
            raise TypeError(f"slim: callbacks must be keras.callbacks.Callback instances, got {c!r}.")
    return callbacks
