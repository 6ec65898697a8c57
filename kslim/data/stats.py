"""Per-channel normalisation statistics (mean and standard deviation on the [0, 1] scale).

For the datasets the paper uses, the usual published figures: the per-channel
mean and (population) standard deviation of every pixel of the training split.
The paper's Torch code uses the same figures rounded on the 0..255 scale
(CIFAR-10 mean 125.3, 123.0, 113.9, std 63.0, 62.1, 66.7). For any other
dataset (an `.npz`, an image folder, SVHN, ...) they are computed the same way
from its training split, once, and cached in kslim's cache folder.
"""

import os

import numpy as np

from kslim.data import _cache

KNOWN = {
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def compute(x):
    """Per-channel mean and population standard deviation of uint8 images, on the [0, 1] scale.

    Args:
        x: uint8 array `(N, H, W, C)`.

    Returns:
        `(mean, std)`, tuples of C floats.
    """
    channels = x.shape[-1]
    total = np.zeros(channels)
    squares = np.zeros(channels)
    # Chunks keep the float64 copy small (CIFAR-10 whole would take 1.2 GB).
    for start in range(0, len(x), 4096):
        chunk = x[start : start + 4096].reshape(-1, channels).astype(np.float64) / 255.0
        total += chunk.sum(axis=0)
        squares += np.square(chunk).sum(axis=0)
    count = x.size // channels
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - np.square(mean), 0.0))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def cached(label, fingerprint, read_train):
    """The statistics of a dataset's training split, computed once and cached.

    Args:
        label: str, a readable name for the cache entry.
        fingerprint: JSON-serialisable value that changes when the data does.
        read_train: callable returning the uint8 training images, called only
            when the cache has no entry.

    Returns:
        `(mean, std)`, tuples of floats.
    """
    path = os.path.join(_cache.entry("stats", label, fingerprint), "stats.json")
    stored = _cache.load_json(path)
    if stored and "mean" in stored and "std" in stored:
        return tuple(stored["mean"]), tuple(stored["std"])
    mean, std = compute(read_train())
    _cache.save_json(path, {"mean": list(mean), "std": list(std)})
    return mean, std
