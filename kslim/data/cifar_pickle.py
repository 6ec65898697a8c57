"""The CIFAR-10 and CIFAR-100 "python version" folders (`cifar-10-batches-py`, `cifar-100-python`).

These are the folders inside the official `cifar-10-python.tar.gz` and
`cifar-100-python.tar.gz` from https://www.cs.toronto.edu/~kriz/cifar.html:
pickled dicts whose `b"data"` is an `(N, 3072)` uint8 array, each row a
32x32 image in channel-major order (1024 red, 1024 green, 1024 blue values,
each row-major), and whose labels are `b"labels"` (CIFAR-10) or
`b"fine_labels"` (CIFAR-100).

Unpickling can run arbitrary code, so these files are read with an
unpickler that only builds plain containers and NumPy arrays.
"""

import os
import pickle

import numpy as np

from kslim.data.npz import images_and_labels

CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))

# What a NumPy array pickle may reference, across NumPy 1.x (`numpy.core`) and 2.x (`numpy._core`);
# protocol-2 pickles written by Python 3 store bytes through `_codecs.encode`.
_NUMPY = (
    "numpy",
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core.numeric",
    "numpy._core.numeric",
)
_ALLOWED = {(m, n) for m in _NUMPY for n in ("_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer")}
_ALLOWED.add(("_codecs", "encode"))


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a CIFAR batch holds only dicts, lists and arrays"
        )


def is_cifar10(path):
    """True if `path` is a `cifar-10-batches-py` folder."""
    return os.path.isfile(os.path.join(path, "data_batch_1")) and os.path.isfile(
        os.path.join(path, "test_batch")
    )


def is_cifar100(path):
    """True if `path` is a `cifar-100-python` folder."""
    return os.path.isfile(os.path.join(path, "train")) and os.path.isfile(os.path.join(path, "test"))


def read(path, split):
    """Reads one split of a CIFAR-10 or CIFAR-100 python folder.

    Args:
        path: str, a `cifar-10-batches-py` or `cifar-100-python` folder.
        split: `"train"` or `"test"`.

    Returns:
        `(x, y)`: uint8 `(N, 32, 32, 3)` and int64 `(N,)` (CIFAR-100's fine labels).

    Raises:
        FileNotFoundError: if a batch file is missing.
        ValueError: if a file is not a CIFAR batch.
    """
    if is_cifar10(path):
        names, label_key = (CIFAR10_TRAIN if split == "train" else ("test_batch",)), b"labels"
    else:
        names, label_key = (split,), b"fine_labels"
    xs, ys = [], []
    for name in names:
        batch = _read_batch(os.path.join(path, name), label_key)
        xs.append(batch[b"data"])
        ys.append(np.asarray(batch[label_key]))
    x = np.concatenate(xs).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images_and_labels(np.ascontiguousarray(x), np.concatenate(ys), source=path)


def class_names(path):
    """The class names from `batches.meta` / `meta`, or None if that file is absent."""
    if is_cifar10(path):
        meta, key = os.path.join(path, "batches.meta"), b"label_names"
    else:
        meta, key = os.path.join(path, "meta"), b"fine_label_names"
    if not os.path.isfile(meta):
        return None
    names = _unpickle(meta).get(key)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None


def _unpickle(file):
    with open(file, "rb") as f:
        try:
            value = _ArraysOnlyUnpickler(f, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise ValueError(f"{file} is not a CIFAR python batch ({e}).") from e
    if not isinstance(value, dict):
        raise ValueError(f"{file} holds a {type(value).__name__}; a CIFAR python batch holds a dict.")
    # Files written by Python 3 with str keys are accepted too.
    return {k.encode() if isinstance(k, str) else k: v for k, v in value.items()}


def _read_batch(file, label_key):
    if not os.path.isfile(file):
        raise FileNotFoundError(
            f"CIFAR batch {file} is missing; the folder should hold the files of the official "
            "python version (data_batch_1..5 and test_batch, or train and test)."
        )
    batch = _unpickle(file)
    data = batch.get(b"data")
    if data is None or label_key not in batch:
        raise ValueError(
            f"{file} lacks {b'data'!r} or {label_key!r} (it has {sorted(batch)}); "
            "it is not a CIFAR python batch."
        )
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{file}: b'data' has shape {data.shape}; a CIFAR batch has (N, 3072).")
    return batch
