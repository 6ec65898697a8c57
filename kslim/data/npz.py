"""Keras-style `.npz` datasets, and the MNIST copy embedded in kslim."""

import os
import zipfile
import zlib

import numpy as np

from kslim._internal.formatting import first_line

_KEYS = ("x_train", "y_train", "x_test", "y_test")


def mnist_path():
    """Returns the path of the MNIST copy that ships inside kslim.

    The file is the real MNIST (60,000 training and 10,000 test images in the
    canonical order, exact uint8 pixels) in the layout of Keras's `mnist.npz`,
    so `kslim.data.load("mnist")` works on a machine with no internet access
    and no TensorFlow Datasets.

    Returns:
        str, the absolute path of `kslim/data/mnist.npz`.

    Raises:
        FileNotFoundError: if the installation lacks the file.

    Example:

    >>> x = numpy.load(kslim.data.mnist_path())["x_train"]  # (60000, 28, 28) uint8
    """
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist.npz")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"kslim's embedded MNIST is missing: expected {path}. Reinstall kslim "
            "(setup.py ships kslim/data/*.npz as package data)."
        )
    return path


def read(path, split):
    """Reads one split of a `.npz` file with keys `x_train, y_train, x_test, y_test`.

    Args:
        path: str, the `.npz` file.
        split: `"train"` or `"test"`.

    Returns:
        `(x, y)`: uint8 images `(N, H, W, C)` (a channel axis is added to
        `(N, H, W)` grey images) and int64 labels `(N,)` (`(N, 1)` labels, as
        in Keras's `cifar10`, are flattened).

    Raises:
        ValueError: if a key is missing, or the shapes do not match.
        TypeError: if the pixels are not 8-bit integers.
    """
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = list(f.files)
            x = f[f"x_{split}"] if f"x_{split}" in keys else None
            y = f[f"y_{split}"] if f"y_{split}" in keys else None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as error:
        reason = first_line(error)
        if not zipfile.is_zipfile(path):
            reason = "it is not a zip archive"
        raise ValueError(
            f"{path} is not a readable .npz file ({reason}); it "
            "may be truncated or not an .npz at all: save it again with np.savez(path, x_train=..., "
            "y_train=..., x_test=..., y_test=...)."
        ) from None
    missing = [k for k in _KEYS if k not in keys]
    if missing:
        raise ValueError(
            f"{path} lacks the keys {missing} (it has {sorted(keys)}); kslim reads "
            "Keras-style .npz files with x_train, y_train, x_test, y_test, like "
            "keras.datasets' mnist.npz. Save yours with np.savez(path, x_train=..., "
            "y_train=..., x_test=..., y_test=...)."
        )
    return images_and_labels(x, y, source=f"{path} [x_{split}, y_{split}]")


def images_and_labels(x, y, source):
    """Checks and normalises image and label arrays to uint8 NHWC and int64 `(N,)`.

    Args:
        x: array of images, `(N, H, W)` or `(N, H, W, C)` with C in 1, 3, 4.
        y: array of integer labels, `(N,)` or `(N, 1)`.
        source: str, named in error messages.

    Returns:
        `(x, y)` as uint8 `(N, H, W, C)` and int64 `(N,)`.

    Raises:
        TypeError: if the pixels are not 8-bit integers or the labels not integers.
        ValueError: if the shapes are wrong or do not match.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{source}: images have shape {x.shape}; expected (N, H, W) or (N, H, W, C) "
            "with C = 1, 3 or 4 channels last."
        )
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 255)):
            raise TypeError(
                f"{source}: images are {x.dtype} with values outside 0..255 or not integers; "
                "kslim reads 8-bit pixels: store them as uint8 in 0..255."
            )
        x = x.astype(np.uint8)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise TypeError(
            f"{source}: labels have shape {y.shape} and dtype {y.dtype}; expected integer "
            "class ids of shape (N,) (not one-hot)."
        )
    if len(x) != len(y):
        raise ValueError(f"{source}: {len(x)} images but {len(y)} labels.")
    return x, y.astype(np.int64)
