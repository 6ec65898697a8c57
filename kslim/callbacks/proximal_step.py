"""`ProximalStep`: trains the sparsity penalty by proximal gradient descent."""

import keras
from keras import ops

from kslim import penalties
from kslim.sparsity.factors import scaling_factors
from kslim._internal import keras_api


class ProximalStep(keras.callbacks.Callback):
    """Applies the penalty's proximal operator to every scaling factor after each step.

    This is proximal gradient descent: the optimizer takes its step on the
    loss alone, then every channel scaling factor (BN `gamma`, ChannelMask
    `mask`) is replaced by `penalty.prox(gamma, step=lr)`, with `lr` the
    learning rate of the step just taken (a `LearningRateSchedule` is
    evaluated at that step). Unlike the subgradient of a penalty in the loss,
    which makes small factors oscillate around 0, the proximal step sets
    them to exact zeros. Use it instead of `kslim.attach`, not with it: the
    penalty must not also be in the loss.

    The factors are read from and written to the model once per call of
    `on_train_batch_end` (once per `steps_per_execution` steps). With plain
    SGD this is exactly proximal gradient descent; with momentum or Adam it is
    the usual heuristic of applying the prox with the base learning rate.
    With the JAX backend the training state is synced to the model every
    batch, which costs time.

    Reference: Bui, Park, Xin et al., "Improving Network Slimming with
    Nonconvex Regularization", IEEE Access 2021 (the closed-form thresholdings);
    Parikh and Boyd, "Proximal Algorithms", 2014.

    Args:
        penalty: a name from `kslim.penalties.names()` (default `"l1"`) or a
            `kslim.penalties.Penalty` instance.
        lam: float >= 0, the penalty weight; used only when `penalty` is a
            name.
        exclude: iterable of layer names whose scaling factor is left alone.
        **penalty_args: the penalty's own parameters (`p`, `a`, ...), with a
            penalty name.

    Raises:
        ValueError: for an unknown penalty or invalid parameters; at the start
            of training, if the model has no trainable scaling factor or a
            factor already carries a kslim penalty as its regularizer; during
            training, if the penalty's prox does not accept the step (MCP and
            SCAD need `lr * lam` below a bound).

    Example:

    >>> model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    >>> model.fit(x, y, callbacks=[kslim.callbacks.ProximalStep("l1", lam=1e-4)])
    """

    def __init__(self, penalty="l1", lam=1e-4, exclude=(), **penalty_args):
        super().__init__()
        self.penalty = penalties.get(penalty, lam, **penalty_args)
        if isinstance(exclude, str):
            exclude = (exclude,)
        self.exclude = tuple(exclude)
        self._factors = []

    def on_train_begin(self, logs=None):
        factors = scaling_factors(self.model, self.exclude)
        if not factors:
            raise ValueError(
                f"ProximalStep found no trainable scaling factor in model '{self.model.name}' "
                f"(exclude={list(self.exclude)}); it needs BatchNormalization layers with "
                "scale=True or kslim.layers.ChannelMask layers that are trainable and not excluded."
            )
        attached = [
            layer.name
            for layer, variable in factors
            if isinstance(getattr(variable, "regularizer", None), penalties.Penalty)
        ]
        if attached:
            raise ValueError(
                f"ProximalStep got a model whose scaling factors already carry a kslim penalty "
                f"in the loss (layers {attached}); the proximal step would apply the penalty "
                "twice. Call kslim.detach(model) before training with ProximalStep, or train "
                "with the attached penalty alone."
            )
        self._factors = factors

    def on_train_batch_end(self, batch, logs=None):
        # With JAX the trained values live outside the model until synced;
        # syncing also makes the trainer re-read our writes before its next step.
        sync = getattr(self.model, "jax_state_sync", None)
        if sync is not None:
            sync()
        step = _current_learning_rate(self.model.optimizer)
        for _, variable in self._factors:
            value = ops.convert_to_numpy(variable)
            variable.assign(self.penalty.prox(value, step=step).astype(value.dtype))


def _current_learning_rate(optimizer):
    """The learning rate of the step the optimizer has just taken, as a float."""
    # A LossScaleOptimizer delegates to its inner optimizer, which counts only
    # the steps it applied.
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    # `optimizer.learning_rate` evaluates a schedule at the *current*
    # iteration; the schedule object itself is only reachable privately.
    schedule = keras_api.learning_rate_schedule(optimizer)
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        # `iterations` was incremented after the step, which used the rate at
        # the previous iteration.
        iteration = max(int(ops.convert_to_numpy(optimizer.iterations)) - 1, 0)
        return float(ops.convert_to_numpy(schedule(iteration)))
    return float(ops.convert_to_numpy(optimizer.learning_rate))
