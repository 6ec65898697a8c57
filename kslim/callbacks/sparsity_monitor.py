"""`SparsityMonitor`: logs how sparse the channel scaling factors are, every epoch."""

import os

import keras
import numpy as np
from keras import ops

from kslim import penalties
from kslim._internal.checks import check_number
from kslim.pruning.analysis import Analysis
from kslim.pruning.budget import ratio_cut
from kslim.sparsity.factors import how_to_add_factors, scaling_factors


class SparsityMonitor(keras.callbacks.Callback):
    """Adds sparsity statistics of the channel scaling factors to `logs` each epoch.

    Use it while training with `kslim.attach` to watch the scaling factors go
    to zero and to choose a pruning ratio: `ratio_threshold` tells what
    `kslim.prune(model, ratio=ratio)` would cut at. The values are plain
    Python floats written into `logs` at the end of every epoch, with the same
    keys every epoch, so `History`, the progress bar, `CSVLogger` and
    `TensorBoard` record them (put `SparsityMonitor` before `CSVLogger` and
    `TensorBoard` in the callbacks list; `History` and the progress bar always
    come last).

    The keys are a stable public contract (CSV columns, TensorBoard tags); they
    are computed over all trainable BN `gamma` and ChannelMask `mask` values of
    the model, nested models included:

    - `sparsity`: fraction of scaling factors with `|gamma| < threshold`.
    - `penalty`: the value of the attached kslim penalties on their factors
      (what they add to the loss); 0.0 if none is attached.
    - `mean_abs_gamma`: mean of `|gamma|`.
    - `ratio_threshold`: the threshold that `kslim.plan(model, ratio=ratio)`
      would cut at now (`Plan.threshold`): the same rule
      (`kslim.pruning.ratio_cut`) over the same prunable channel groups.
      For a model kslim cannot analyse (a subclassed model), the rule is
      applied to every factor on its own.

    With `log_dir`, it also writes a histogram of `|gamma|` per layer for
    TensorBoard (tags `abs_gamma/<layer name>`, step = epoch). That part needs
    TensorFlow (`tf.summary`), imported only then; the `tensorboard` package
    is needed only to view the logs.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, figure 4 (distribution of scaling factors).

    Args:
        threshold: float > 0, the `|gamma|` below which a factor counts as
            zero in `sparsity`.
        ratio: float in [0, 1), the global pruning ratio of `ratio_threshold`.
        log_dir: optional str, a folder for the TensorBoard histograms (may be
            the `TensorBoard` callback's `log_dir`).
        verbose: 0 (silent) or 1 (print one line per epoch).

    Raises:
        ValueError: for invalid arguments; at the start of training, if the
            model has no trainable scaling factor.

    Example:

    >>> kslim.attach(model, lam=1e-4)
    >>> history = model.fit(x, y, epochs=2, callbacks=[kslim.callbacks.SparsityMonitor()])
    >>> history.history["sparsity"]  # one float per epoch
    """

    def __init__(self, threshold=1e-2, ratio=0.5, log_dir=None, verbose=0):
        super().__init__()
        threshold_value = check_number(
            "threshold", threshold, low=0, low_open=True, high=float("inf"), high_open=True,
            where="SparsityMonitor", hint="the |gamma| below which a channel counts as zero (e.g. 1e-2)",
        )
        ratio_value = check_number(
            "ratio", ratio, low=0, high=1, high_open=True, where="SparsityMonitor",
            hint="the fraction of channels that would be pruned (e.g. 0.5)",
        )
        if verbose not in (0, 1):
            raise ValueError(f"SparsityMonitor got verbose={verbose!r}; use 0 or 1.")
        self.threshold = threshold_value
        self.ratio = ratio_value
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self.verbose = verbose
        self._writer = None
        self._analysis = None

    def on_train_begin(self, logs=None):
        if not scaling_factors(self.model):
            raise ValueError(
                f"SparsityMonitor: model '{self.model.name}' has no trainable channel scaling "
                f"factor to monitor: {how_to_add_factors(self.model)}."
            )
        try:  # the channel groups that kslim.plan ranks; analysed once per fit
            self._analysis = Analysis(self.model)
        except ValueError:  # not a functional graph: rank every factor on its own
            self._analysis = None
        if self.log_dir is not None and self._writer is None:
            import tensorflow as tf  # Only the histograms need TensorFlow.

            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        factors = scaling_factors(self.model)
        values = [np.abs(ops.convert_to_numpy(variable.value)).ravel() for _, variable in factors]
        pooled = np.concatenate(values) if values else np.zeros((0,))
        stats = {
            "sparsity": float(np.mean(pooled < self.threshold)) if pooled.size else 0.0,
            "penalty": self._penalty(factors),
            "mean_abs_gamma": float(np.mean(pooled)) if pooled.size else 0.0,
            "ratio_threshold": self._ratio_threshold(pooled),
        }
        if logs is not None:
            logs.update(stats)
        if self._writer is not None:
            self._write_histograms(epoch, factors, values)
        if self.verbose:
            print(
                f"Epoch {epoch + 1}: sparsity={stats['sparsity']:.4f} "
                f"(|gamma| < {self.threshold:g}), penalty={stats['penalty']:.6g}, "
                f"mean_abs_gamma={stats['mean_abs_gamma']:.6g}, "
                f"ratio_threshold={stats['ratio_threshold']:.6g} (ratio={self.ratio:g})"
            )

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _ratio_threshold(self, pooled):
        if self._analysis is None:
            scores = dict(enumerate(pooled.tolist()))
            return ratio_cut(scores, dict.fromkeys(scores, 1), self.ratio)[1]
        self._analysis.rescore()
        scores = self._analysis.prunable()
        if not scores:
            return float("inf")
        return ratio_cut(scores, self._analysis.size, self.ratio)[1]

    def _penalty(self, factors):
        total = 0.0
        for _, variable in factors:
            reg = variable.regularizer
            if isinstance(reg, penalties.Penalty):
                total += float(ops.convert_to_numpy(reg(variable.value)))
        return total

    def _write_histograms(self, epoch, factors, values):
        seen = {}
        with self._writer.as_default(step=epoch):
            for (layer, _), value in zip(factors, values):
                # Layer names repeat only across nested models; keep tags unique.
                count = seen.get(layer.name, 0)
                seen[layer.name] = count + 1
                tag = layer.name if count == 0 else f"{layer.name}_{count}"
                _write_histogram(f"abs_gamma/{tag}", value, epoch)
        self._writer.flush()


def _write_histogram(tag, values, step, buckets=30):
    """Writes a TensorBoard histogram summary with `tf.summary.write`.

    `tf.summary.histogram` is implemented by the `tensorboard` package, which
    TensorFlow no longer installs; this writes the same record (the
    "histograms" plugin's `[buckets, 3]` tensor of left edge, right edge,
    count), so TensorBoard shows it and only TensorFlow is needed to write it.
    """
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    if values.min() == values.max():
        table = np.array([[values.min(), values.max(), values.size]], dtype=np.float64)
    else:
        counts, edges = np.histogram(values, bins=buckets)
        table = np.stack([edges[:-1], edges[1:], counts], axis=1).astype(np.float64)
    metadata = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="histograms"),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )
    tf.summary.write(tag, tf.constant(table), step=step, metadata=metadata)
