"""Samples for calibration and parity checks, from arrays or `tf.data`, shaped like the model's input."""

import numpy as np


def _as_arrays(data, model, what, limit=None):
    """Returns `(x, y or None)` from arrays, an `(x, y)` pair or a finite `tf.data.Dataset`.

    `x` is cast to the model's input dtype and gets a trailing channel axis of
    size 1 when the model wants one and the data lacks it (MNIST as (N, 28, 28)).
    """
    if data is None:
        return None, None
    shape = tuple(model.inputs[0].shape)
    if _is_dataset(data):
        x, y = _from_dataset(data, shape, limit)
    elif isinstance(data, (tuple, list)):
        if len(data) not in (1, 2, 3):
            raise ValueError(
                f"{what} must be x, (x,) or (x, y) (a sample weight may follow); got a sequence of "
                f"{len(data)} items."
            )
        x = np.asarray(data[0])
        y = None if len(data) == 1 else np.asarray(data[1])
    elif hasattr(data, "shape") and hasattr(data, "dtype"):
        x, y = np.asarray(data), None
    else:
        raise TypeError(
            f"{what} must be a NumPy array, an (x, y) tuple or a tf.data.Dataset; got {type(data).__name__}."
        )
    if limit is not None:
        x = x[:limit]
        y = None if y is None else y[:limit]
    if x.ndim == len(shape) - 1 and shape[-1] == 1 and _matches(x.shape[1:], shape[1:-1]):
        x = x[..., None]
    if not _matches(x.shape[1:], shape[1:]):
        raise ValueError(
            f"{what} has samples of shape {x.shape[1:]} but model '{model.name}' takes inputs of shape "
            f"{shape[1:]}; pass data shaped like the model's input."
        )
    if len(x) == 0:
        raise ValueError(f"{what} is empty; pass at least one sample.")
    if y is not None and len(y) != len(x):
        raise ValueError(f"{what} has {len(x)} inputs but {len(y)} labels; pass one label per input.")
    return x.astype(model.inputs[0].dtype), y


def _is_dataset(data):
    try:
        import tensorflow as tf
    except ImportError:
        return False
    return isinstance(data, tf.data.Dataset)


def _from_dataset(dataset, shape, limit):
    xs, ys = [], []
    count = 0
    for element in dataset.as_numpy_iterator():
        if isinstance(element, tuple):
            x, y = element[0], (element[1] if len(element) > 1 else None)
        else:
            x, y = element, None
        x = np.asarray(x)
        unbatched = _matches(x.shape, shape[1:]) or (
            shape[-1] == 1 and _matches(x.shape, shape[1:-1])
        )
        if unbatched:
            x = x[None]
            y = None if y is None else np.asarray(y)[None]
        xs.append(x)
        if y is not None:
            ys.append(np.asarray(y))
        count += len(x)
        if limit is not None and count >= limit:
            break
    if not xs:
        raise ValueError("The tf.data.Dataset given to kslim.export is empty; pass at least one sample.")
    x = np.concatenate(xs)
    y = np.concatenate(ys) if len(ys) == len(xs) else None
    return x, y


def _matches(shape, pattern):
    return len(shape) == len(pattern) and all(p is None or s == p for s, p in zip(shape, pattern))
