"""The paper's training recipe: SGD with Nesterov momentum, L2 weight decay, step learning-rate decay.

A recipe can also decay the rate along a cosine after a linear warm-up
(`schedule="cosine"`, `warmup_epochs`), which converges in far fewer epochs
than the paper's 160.

`Recipe` holds the hyper-parameters and turns them into Keras objects (a
learning-rate schedule, an optimizer, a compiled model); `paper(dataset)`
gives the settings of Liu et al. for each dataset; `CoupledSGD` is the
optimizer, SGD whose weight decay works as in the paper's Torch and PyTorch
code.
"""

import fractions
import math
import operator

import keras

from kslim.training.coupled_sgd import CoupledSGD

_FIELDS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "milestones", "decay_rate",
           "schedule", "warmup_epochs")
SCHEDULES = ("step", "cosine")


class Recipe:
    """The paper's training schedule, every value overridable.

    Use it to train (and fine-tune, which repeats the schedule) the way
    network slimming does: SGD with Nesterov momentum 0.9, weight decay 1e-4
    (coupled L2, see `CoupledSGD`), batch 64, learning rate 0.1 divided by 10
    after 50% and 75% of the epochs, 160 epochs on CIFAR. `paper(dataset)`
    gives the per-dataset settings.

    The learning rate drops once the given fraction of all training steps is
    done: for 160 epochs, the first step of epoch 81 (epoch index 80) is the
    first at 0.01, as in the paper's PyTorch code. Milestones are counted in
    steps, so they work for any number of epochs (the PyTorch code only
    decays when `epochs * milestone` is a whole number).

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, sec. 5.2.

    Args:
        epochs: int >= 1, epochs of training (160 for CIFAR, 20 for SVHN).
        batch_size: int >= 1, examples per step (64); pass it to
            `kslim.data.load(batch_size=...)`.
        lr: float > 0, the initial learning rate.
        momentum: float in [0, 1), SGD momentum.
        nesterov: bool, Nesterov momentum (needs momentum > 0).
        weight_decay: float >= 0, coupled L2 weight decay on all trainable
            variables.
        milestones: increasing floats in (0, 1], the fractions of training
            after which the learning rate is multiplied by `decay_rate`;
            `()` for a constant rate.
        decay_rate: float in (0, 1], the factor applied at each milestone
            (named after Keras's schedules; the paper's "divided by 10" is 0.1).
        schedule: str, `"step"` (the paper's: `lr` times `decay_rate` at each
            milestone) or `"cosine"` (`lr` decayed to 0 along half a cosine
            over the training after the warm-up, Loshchilov & Hutter, ICLR
            2017; `milestones` and `decay_rate` are then unused). A cosine
            reaches a small rate smoothly by the last epoch, so a run of 30
            epochs converges where the step schedule, stretched over 30,
            spends too few steps at each rate.
        warmup_epochs: float >= 0, epochs over which the rate rises linearly
            from 0 to `lr` before the schedule starts (Goyal et al., 2017);
            0 (the paper's) for none. Must be shorter than `epochs`.

    Raises:
        ValueError: for values out of range.
        TypeError: for values of the wrong type.

    Example:

    >>> recipe = kslim.recipe.paper("cifar10").replace(epochs=40)
    >>> train = kslim.data.load("cifar10", batch_size=recipe.batch_size)
    >>> recipe.compile(model, steps_per_epoch=int(train.cardinality()))
    >>> model.fit(train, epochs=recipe.epochs)
    """

    def __init__(
        self,
        epochs=160,
        batch_size=64,
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        weight_decay=1e-4,
        milestones=(0.5, 0.75),
        decay_rate=0.1,
        schedule="step",
        warmup_epochs=0.0,
    ):
        self.epochs = _positive_int("epochs", epochs)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.lr = _number("lr", lr)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr!r}.")
        self.momentum = _number("momentum", momentum)
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r} (the paper uses 0.9).")
        if not isinstance(nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}.")
        if nesterov and self.momentum == 0:
            raise ValueError(
                "nesterov=True needs momentum > 0; set momentum (0.9 in the paper) or nesterov=False."
            )
        self.nesterov = nesterov
        self.weight_decay = _number("weight_decay", weight_decay)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}.")
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(
                f"milestones must be a sequence of fractions such as (0.5, 0.75), got {milestones!r}."
            )
        self.milestones = tuple(_number("milestones", m) for m in milestones)
        if any(not 0 < m <= 1 for m in self.milestones) or any(
            a >= b for a, b in zip(self.milestones, self.milestones[1:])
        ):
            raise ValueError(
                f"milestones must be increasing fractions of training in (0, 1], got {milestones!r}; "
                "e.g. (0.5, 0.75) decays after 50% and 75% of the epochs."
            )
        self.decay_rate = _number("decay_rate", decay_rate)
        if not 0 < self.decay_rate <= 1:
            raise ValueError(
                f"decay_rate must be in (0, 1], got {decay_rate!r} (0.1 divides the rate by 10)."
            )
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
        self.schedule = schedule
        self.warmup_epochs = _number("warmup_epochs", warmup_epochs)
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(
                f"warmup_epochs must be >= 0 and below epochs={self.epochs}, got {warmup_epochs!r}."
            )

    def learning_rate(self, steps_per_epoch):
        """The schedule as a Keras learning-rate schedule over optimizer steps.

        `"step"`: a `PiecewiseConstantDecay` (a float if there are no
        milestones and no warm-up). `"cosine"`: a `CosineDecay` to 0. A
        warm-up rises linearly from 0 to `lr` over its steps first (a
        `CosineDecay` warm-up; for `"step"`, a `PiecewiseConstantDecay`
        started after it).

        Args:
            steps_per_epoch: int >= 1, batches per epoch (for a dataset from
                `kslim.data.load`, `int(dataset.cardinality())`).

        Returns:
            A `keras.optimizers.schedules.LearningRateSchedule`, or a float.
        """
        steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        total = self.epochs * steps_per_epoch
        warmup = round(self.warmup_epochs * steps_per_epoch)
        if self.schedule == "cosine":
            return keras.optimizers.schedules.CosineDecay(
                0.0 if warmup else self.lr, decay_steps=total - warmup, alpha=0.0,
                warmup_target=self.lr if warmup else None, warmup_steps=warmup)
        if not self.milestones and not warmup:
            return self.lr
        # The schedule gives values[i] while step <= boundaries[i], and an
        # optimizer's step count is 0 on its first update, so a drop that
        # should start at step s needs the boundary s - 1.
        boundaries = [self._first_step(m, total) - 1 for m in self.milestones]
        values = [self.lr * self.decay_rate**i for i in range(len(boundaries) + 1)]
        steps = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else self.lr
        return _WarmUp(steps, self.lr, warmup) if warmup else steps

    def optimizer(self, steps_per_epoch):
        """A new `CoupledSGD` with this recipe's schedule, momentum and weight decay.

        Args:
            steps_per_epoch: int >= 1, batches per epoch.

        Returns:
            A `kslim.recipe.CoupledSGD`.
        """
        return CoupledSGD(
            learning_rate=self.learning_rate(steps_per_epoch),
            momentum=self.momentum,
            nesterov=self.nesterov,
            weight_decay=self.weight_decay or None,
        )

    def compile(self, model, steps_per_epoch, metrics=("accuracy",), from_logits=True, **kwargs):
        """Compiles `model` with this recipe's optimizer and cross-entropy on integer labels.

        The loss is `SparseCategoricalCrossentropy(from_logits=from_logits)`,
        for the `(images, int labels)` batches of `kslim.data.load`. Sparsity
        penalties set by `kslim.attach` are regularizers, so they are added to
        this loss by Keras, like the paper's extra subgradient on `gamma`.

        Args:
            model: a `keras.Model`.
            steps_per_epoch: int >= 1, batches per epoch.
            metrics: list of metrics, default `["accuracy"]`.
            from_logits: bool, whether the model outputs logits (True) or
                probabilities (False, e.g. a final softmax).
            **kwargs: other `model.compile` arguments (`jit_compile`, ...).

        Raises:
            TypeError: if `model` is not a Keras model.
            ValueError: if `from_logits=True` but the model ends with a softmax.

        Example:

        >>> kslim.recipe.paper("mnist").compile(model, steps_per_epoch=235)
        """
        if not isinstance(model, keras.Model):
            raise TypeError(f"model must be a keras.Model, got {type(model).__name__}.")
        last = model.layers[-1] if model.layers else None
        ends_in_softmax = isinstance(last, keras.layers.Softmax) or (
            getattr(last, "activation", None) is keras.activations.softmax
        )
        if from_logits and ends_in_softmax:
            raise ValueError(
                f"Model '{model.name}' ends with a softmax (layer '{last.name}') but from_logits=True; "
                "pass from_logits=False, or remove the softmax so the model outputs logits."
            )
        model.compile(
            optimizer=self.optimizer(steps_per_epoch),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
            metrics=list(metrics) if metrics is not None else None,
            **kwargs,
        )

    def replace(self, **changes):
        """A copy with some values changed, e.g. `recipe.replace(epochs=40, lr=0.05)`.

        Raises:
            TypeError: for a name that is not a field of `Recipe`.
        """
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise TypeError(f"Recipe has no field {unknown}; the fields are {list(_FIELDS)}.")
        return Recipe(**{**self.get_config(), **changes})

    def get_config(self):
        """The fields as a JSON-serialisable dict (`milestones` as a list)."""
        config = {name: getattr(self, name) for name in _FIELDS}
        config["milestones"] = list(self.milestones)
        return config

    @classmethod
    def from_config(cls, config):
        """Rebuilds a `Recipe` from `get_config()`; missing fields take their defaults.

        Raises:
            TypeError: for a key that is not a field of `Recipe`.
        """
        unknown = sorted(set(config) - set(_FIELDS))
        if unknown:
            raise TypeError(f"Recipe config has unknown keys {unknown}; the fields are {list(_FIELDS)}.")
        return cls(**config)

    def __eq__(self, other):
        return isinstance(other, Recipe) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in self.get_config().items()))

    def __repr__(self):
        config = self.get_config()
        config["milestones"] = self.milestones
        return "Recipe(" + ", ".join(f"{k}={v!r}" for k, v in config.items()) + ")"

    @staticmethod
    def _first_step(milestone, total):
        # Exact fractions, so 0.75 * 160 * spe is not rounded up by float error.
        return math.ceil(fractions.Fraction(milestone).limit_denominator(10**6) * total)


# Liu et al., ICCV 2017, sec. 5.2: CIFAR and SVHN with batch 64 for 160 and 20
# epochs, lr 0.1 divided by 10 at 50% and 75%; ImageNet and MNIST for 60 and 30
# epochs, batch 256, lr 0.1 divided by 10 after 1/3 and 2/3 of the epochs.
_PAPER = {
    "cifar10": {},
    "cifar100": {},
    "svhn": {"epochs": 20},
    "mnist": {"epochs": 30, "batch_size": 256, "milestones": (1 / 3, 2 / 3)},
    "imagenet": {"epochs": 60, "batch_size": 256, "milestones": (1 / 3, 2 / 3)},
}
_ALIASES = {"svhn_cropped": "svhn", "imagenet2012": "imagenet"}


def paper(dataset):
    """The paper's recipe for a dataset.

    Use it as the default schedule for training (and, repeated, for
    fine-tuning the pruned model). All share SGD with Nesterov momentum 0.9,
    weight decay 1e-4 and initial learning rate 0.1:

    - `"cifar10"`, `"cifar100"`: 160 epochs, batch 64, lr / 10 after 50% and 75%.
    - `"svhn"` (or `"svhn_cropped"`): 20 epochs, otherwise as CIFAR.
    - `"mnist"`: 30 epochs, batch 256, lr / 10 after 1/3 and 2/3 (as the paper
      states; its Torch code decays MNIST at 50% and 75%).
    - `"imagenet"`: 60 epochs, batch 256, lr / 10 after 1/3 and 2/3.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, sec. 5.2.

    Args:
        dataset: str, one of the names above.

    Returns:
        A `Recipe`.

    Raises:
        ValueError: for an unknown dataset name.

    Example:

    >>> kslim.recipe.paper("svhn").epochs
    20
    """
    key = _ALIASES.get(dataset, dataset) if isinstance(dataset, str) else dataset
    if key not in _PAPER:
        raise ValueError(
            f"No paper recipe for dataset {dataset!r}; use one of {sorted(_PAPER)} "
            "(or build kslim.recipe.Recipe(...) with your own values)."
        )
    return Recipe(**_PAPER[key])


@keras.saving.register_keras_serializable(package="kslim")
class _WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """A linear rise from 0 to `lr` over `warmup` steps, then `after` (a schedule or a float) at the same
    step count, so the step schedule's milestones stay fractions of the whole training."""

    def __init__(self, after, lr, warmup):
        self.after, self.lr, self.warmup = after, float(lr), int(warmup)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        after = self.after(step) if callable(self.after) else self.after
        rising = self.lr * step / self.warmup
        return keras.ops.where(step < self.warmup, rising, after)

    def get_config(self):
        after = self.after
        if callable(after):
            after = keras.saving.serialize_keras_object(after)
        return {"after": after, "lr": self.lr, "warmup": self.warmup}

    @classmethod
    def from_config(cls, config):
        after = config["after"]
        if isinstance(after, dict):
            after = keras.saving.deserialize_keras_object(after)
        return cls(after, config["lr"], config["warmup"])


def _positive_int(name, value):
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a positive int, got {value!r}.") from None
    if value < 1:
        hint = ""
        if name == "steps_per_epoch":
            hint = " (a dataset's cardinality is negative when unknown: count the batches)"
        raise ValueError(f"{name} must be >= 1, got {value}{hint}.")
    return value


def _number(name, value):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}.")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # NumPy scalars
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return float(value)
