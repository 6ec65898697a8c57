"""Stopping a training that diverged, at the first non-finite loss, with what to try."""

import math

import keras


class DivergenceError(ValueError):
    """Training reached a NaN or infinite loss: the settings (a learning rate or penalty too large) are to
    blame, so it is a `ValueError`, and the commands report it in one line."""


class StopOnDivergence(keras.callbacks.Callback):
    """Raises `DivergenceError` at the first batch whose loss is NaN or infinite.

    Keras's `TerminateOnNaN` only stops the training, and the caller then
    writes a model of NaN weights and carries on (a sparsity-trained model
    whose factors are NaN has no plan); raising stops everything after it,
    so no file is written from the diverged weights.

    Args:
        hint: str, what to try, appended to the message (e.g. "lower the
            learning rate (lr=0.1)").
    """

    def __init__(self, hint="lower the learning rate"):
        super().__init__()
        self.hint = hint
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise DivergenceError(
                f"Training diverged: the loss is {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}, "
                f"and nothing was written; {self.hint}, and run again."
            )
