"""Image folders: `root/train/<class>/*.png|jpg` and `root/test/<class>/...`.

Labels are the class folders' indices in alphabetical order (for CIFAR-10's
class names this is also the canonical label order). Images are decoded with
`tf.io` only (PIL and libjpeg builds can differ by one level per pixel, so
mixing decoders would change the data), all to the same size and channel
count, and the decoded arrays are cached as `.npy` in kslim's cache folder
(`$KSLIM_CACHE_DIR`, default `~/.cache/kslim`): decoding 60,000 JPEGs takes
about half a minute on two cores, reading them back a fraction of a second.
The cache is keyed by the folder's path and listing (file names and folder
modification times); an image edited in place under the same name keeps the
old cache entry, so delete the entry after such edits.

Examples are ordered round-robin over the classes (the first image of every
class, then the second of every class, ...), files sorted by name within a
class, so that `limit=N` takes a class-balanced subset.
"""

import os
import re

import numpy as np

from kslim.data import _cache

_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def is_image_folder(path):
    """True if `path` has a `train` folder whose sub-folders are classes."""
    train = os.path.join(path, "train")
    return os.path.isdir(train) and any(e.is_dir() for e in os.scandir(train))


def class_names(root):
    """The class names: the sub-folders of `root/train`, sorted."""
    train = os.path.join(root, "train")
    return sorted(e.name for e in os.scandir(train) if e.is_dir() and not e.name.startswith("."))


def read(root, split, limit=None):
    """Reads one split of an image folder as arrays.

    Args:
        root: str, the folder holding `train/` and `test/`.
        split: `"train"` or `"test"`.
        limit: int or None; with a limit and no cached arrays, only the first
            `limit` images are decoded (and nothing is cached).

    Returns:
        `(x, y)`: uint8 `(N, H, W, C)` (C = 1 if the first image is grey, else 3)
        and int64 `(N,)`.

    Raises:
        FileNotFoundError: if `root/<split>` is missing or holds no images.
        ValueError: if a test class is not a training class, or the images
            differ in size.
    """
    files, labels, fingerprint = _listing(root, split)
    where = _cache.entry("arrays", os.path.basename(os.path.normpath(root)) + f"-{split}", *fingerprint)
    x = _cache.load_npy(os.path.join(where, "x.npy"))
    y = _cache.load_npy(os.path.join(where, "y.npy"))
    if x is not None and y is not None and len(x) == len(files):
        return (x, y) if limit is None else (x[:limit], y[:limit])
    if limit is not None and limit < len(files):
        return _decode(files[:limit]), labels[:limit]
    x = _decode(files)
    _cache.save_npy(os.path.join(where, "y.npy"), labels)
    _cache.save_npy(os.path.join(where, "x.npy"), x)
    return x, labels


def _listing(root, split):
    classes = class_names(root)
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Image folder {root} has no '{split}' folder; expected {folder}/<class>/*.png|jpg "
            f"with the same class folders as train ({', '.join(classes[:5])}...)."
        )
    present = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise ValueError(
            f"{folder} has classes {unknown} that {os.path.join(root, 'train')} lacks; labels come "
            "from the training classes, so every test class needs a training folder."
        )
    per_class, fingerprint = [], [os.path.abspath(root), split]
    for label, name in enumerate(classes):
        path = os.path.join(folder, name)
        names = (
            sorted(n for n in os.listdir(path) if n.lower().endswith(_EXTENSIONS))
            if os.path.isdir(path)
            else []
        )
        per_class.append([(os.path.join(path, n), label) for n in names])
        fingerprint.append([name, names, os.stat(path).st_mtime_ns if names else 0])
    # Round-robin over the classes, so any prefix is class-balanced.
    ordered = []
    for k in range(max(map(len, per_class), default=0)):
        ordered.extend(c[k] for c in per_class if k < len(c))
    if not ordered:
        raise FileNotFoundError(
            f"{folder} holds no images ({', '.join(_EXTENSIONS)}) in its class folders "
            f"{', '.join(present[:5]) or '(none)'}."
        )
    files = [f for f, _ in ordered]
    labels = np.array([label for _, label in ordered], dtype=np.int64)
    return files, labels, fingerprint


def _decode(files):
    import tensorflow as tf

    try:
        first = tf.io.decode_image(tf.io.read_file(files[0]), expand_animations=False)
    except tf.errors.OpError as error:
        raise _unreadable(files[0], error) from None
    channels = 1 if first.shape[-1] in (1, 2) else 3
    shape = (first.shape[0], first.shape[1], channels)

    def decode(path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        return image, tf.shape(image)

    ds = tf.data.Dataset.from_tensor_slices(files).map(
        decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    x = np.empty((len(files),) + shape, dtype=np.uint8)
    i = 0
    try:
        for image, got in ds.as_numpy_iterator():  # in order (deterministic), so i names the file
            if tuple(got) != shape:
                raise ValueError(
                    f"{files[i]} is {tuple(got)[0]}x{tuple(got)[1]} but {files[0]} is "
                    f"{shape[0]}x{shape[1]}; all images of a folder dataset must have one size "
                    "(resize them beforehand)."
                )
            x[i] = image
            i += 1
    except tf.errors.OpError as error:
        raise _unreadable(files[i], error) from None
    return x


def _unreadable(path, error):
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", getattr(error, "message", None) or str(error)).strip()
    if "Iterator::" in text:  # "Error in user-defined function ... Iterator::Root::...: <the cause>"
        text = text.rsplit(": ", 1)[-1]
    text = re.sub(r"\s*\[Op:\w+\].*$", "", text.splitlines()[0]) if text else type(error).__name__
    return ValueError(
        f"{path} is not a readable image ({text}); "
        "replace it or delete it from the folder (or the archive)."
    )
