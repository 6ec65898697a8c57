"""`CoupledSGD`: SGD whose weight decay works as in the paper's Torch and PyTorch code."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kslim")
class CoupledSGD(keras.optimizers.SGD):
    """SGD whose weight decay is L2 added to the gradient (coupled), as in PyTorch and Torch7.

    Use it to train exactly as the paper's code does. Keras's own
    `keras.optimizers.SGD(weight_decay=wd)` decays *decoupled*
    (`w -= lr * wd * w` as a separate step, Loshchilov & Hutter's SGDW), which
    equals L2 regularisation only without momentum; with momentum the L2 term
    of the paper's optimizer also accumulates in the velocity, so the same
    coefficient decays about `1 / (1 - momentum)` times (10 at 0.9) more strongly
    than Keras's decoupled decay. This optimizer follows `torch.optim.SGD`
    (dampening 0) and Torch7's `optim.sgd`, the optimizers of the paper's code:

    ```
    g = grad + weight_decay * w
    buf = momentum * buf + g
    w -= lr * (g + momentum * buf)       # nesterov=True
    w -= lr * buf                        # nesterov=False
    ```

    With a constant learning rate this equals Keras's SGD with the term
    `weight_decay / 2 * sum(w ** 2)` added to the loss (Keras keeps `lr`
    inside its velocity, PyTorch outside; the two differ only in the steps
    right after a learning-rate drop, where PyTorch's velocity shrinks at once).

    Weight decay applies to every trainable variable, BatchNormalization's
    `gamma` and `beta` and the biases included, as in the paper's code (so
    `gamma` gets both the sparsity penalty and the decay). To exempt some, use
    Keras's `optimizer.exclude_from_weight_decay(var_names=[...])` before
    training.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, sec. 5.2; Loshchilov and Hutter,
    "Decoupled Weight Decay Regularization", ICLR 2019.

    Args:
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
        momentum: float in [0, 1].
        nesterov: bool, Nesterov momentum.
        weight_decay: float or None, the L2 coefficient added to the gradient.
        **kwargs: other `keras.optimizers.Optimizer` arguments (`clipnorm`, ...).

    Example:

    >>> opt = kslim.recipe.CoupledSGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    >>> model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, **kwargs):
        if isinstance(momentum, (int, float)) and not isinstance(momentum, bool):
            momentum = float(momentum)  # Keras's SGD rejects an int 0
        if weight_decay is not None and (
            isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0
        ):
            raise ValueError(f"weight_decay must be None or a float >= 0, got {weight_decay!r}.")
        super().__init__(
            learning_rate=learning_rate,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            **kwargs,
        )

    def _apply_weight_decay(self, variables):
        # The decay enters the gradient in update_step; Keras's decoupled step must not run too.
        return

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.weight_decay and self._use_weight_decay(variable):
            decay = ops.cast(self.weight_decay, variable.dtype)
            gradient = ops.add(gradient, ops.multiply(variable, decay))
        if self.momentum != 0:
            velocity = self.momentums[self._get_variable_index(variable)]
            momentum = ops.cast(self.momentum, variable.dtype)
            self.assign(velocity, ops.add(ops.multiply(velocity, momentum), gradient))
            if self.nesterov:
                gradient = ops.add(gradient, ops.multiply(velocity, momentum))
            else:
                gradient = ops.convert_to_tensor(velocity)
        self.assign_sub(variable, ops.multiply(gradient, learning_rate))
