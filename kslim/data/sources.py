"""Which dataset a name or path means, and reading it as arrays: `load_arrays` and `info`."""

import os

import numpy as np

from kslim.data import _cache, archive, cifar_pickle, image_folder, npz, stats, tfds_source

SPLITS = ("train", "test")
_PATHS = (
    "a Keras-style .npz (x_train, y_train, x_test, y_test), a cifar-10-batches-py or "
    "cifar-100-python folder, an image folder (train/<class>/*.png|jpg, test/<class>/...), "
    "or a .tar.gz of one of these folders"
)
_FORMATS = "a tfds name prepared on disk (mnist, cifar10, cifar100, svhn_cropped, ...), " + _PATHS


class _Source:
    """A resolved dataset: its format, where it is, and what kslim knows about it."""

    def __init__(self, kind, path, known=None, digits=False, origin=None):
        self.kind = kind  # "npz", "cifar10", "cifar100", "image_folder" or "tfds"
        self.path = path
        self.known = known  # a key of stats.KNOWN, or None
        self.digits = digits  # digit datasets are not flipped (and SVHN not augmented)
        self.origin = origin or path  # the archive a folder was extracted from

    def read(self, split, limit=None):
        if self.kind == "npz":
            x, y = npz.read(self.path, split)
        elif self.kind in ("cifar10", "cifar100"):
            x, y = cifar_pickle.read(self.path, split)
        elif self.kind == "image_folder":
            try:
                x, y = image_folder.read(self.path, split, limit=limit)
            except ValueError as error:
                if self.origin == self.path:
                    raise
                # Name the archive and its member, not kslim's extraction cache.
                text = str(error).replace(os.path.join(self.path, ""), f"{self.origin}, file ")
                raise ValueError(text) from None
        else:
            x, y = tfds_source.read(self.path, split, limit=limit)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        check_labels(y, f"{self.origin} ({split} split)")
        return x, y

    def class_names(self):
        if self.kind in ("cifar10", "cifar100"):
            return cifar_pickle.class_names(self.path)
        if self.kind == "image_folder":
            return image_folder.class_names(self.path)
        if self.kind == "tfds":
            return tfds_source.class_names(self.path)
        return None

    def normalization(self):
        """`(mean, std)` on the [0, 1] scale: published figures, or computed from the training split."""
        if self.known:
            return stats.KNOWN[self.known]
        if os.path.isfile(self.origin):
            fingerprint = _cache.file_fingerprint(self.origin)
        else:
            fingerprint = _dir_fingerprint(self.path)
        label = os.path.basename(os.path.normpath(self.origin))
        return stats.cached(label, fingerprint, lambda: self.read("train")[0])


def resolve(name, data_dir=None):
    """Finds the dataset that `name` means; see `kslim.data.load` for the rules."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a dataset name or a path (str), got {name!r}; use {_FORMATS}.")
    if tfds_source.looks_like_name(name):
        version_dir, looked_in = tfds_source.find_prepared(name, data_dir)
        base = tfds_source.base_name(name)
        if version_dir is not None:
            known = base if base in stats.KNOWN else None
            return _Source("tfds", version_dir, known=known, digits=base in ("mnist", "svhn_cropped"))
        if base == "mnist" and name == base:
            return _Source("npz", npz.mnist_path(), known="mnist", digits=True)
        path = _join(name, data_dir)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Dataset '{name}' is not prepared for TensorFlow Datasets: looked for "
                f"{looked_in}/<version>/dataset_info.json and found none (nor a file or folder "
                f"{path}). kslim never downloads: on a machine with internet run "
                f"`tfds build {base} --data_dir=DIR` (pip install 'kslim[tfds]') and pass "
                f"data_dir=DIR, or pass the path of {_PATHS}."
            )
    else:
        path = _join(name, data_dir)
    return _resolve_path(path)


def _join(name, data_dir):
    path = os.path.expanduser(name)
    if data_dir and not os.path.isabs(path):
        path = os.path.join(os.path.expanduser(data_dir), path)
    return os.path.abspath(path)


def _resolve_path(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"No dataset at {path}: no such file or folder. kslim.data reads {_FORMATS}.")
    if os.path.isfile(path):
        if path.lower().endswith(".npz"):
            embedded = _is_embedded_mnist(path)
            return _Source("npz", path, known="mnist" if embedded else None, digits=embedded)
        if archive.is_archive(path):
            return _resolve_folder(archive.extract(path), origin=path)
        raise ValueError(f"Cannot read {path}: unknown file type. kslim.data reads {_FORMATS}.")
    return _resolve_folder(path)


def _is_embedded_mnist(path):
    try:
        return os.path.samefile(path, npz.mnist_path())
    except FileNotFoundError:
        return False


def _resolve_folder(path, origin=None):
    folder = path
    for _ in range(3):
        if cifar_pickle.is_cifar10(folder):
            return _Source("cifar10", folder, known="cifar10", origin=origin)
        if cifar_pickle.is_cifar100(folder):
            return _Source("cifar100", folder, known="cifar100", origin=origin)
        if image_folder.is_image_folder(folder):
            return _Source("image_folder", folder, origin=origin)
        # A folder holding one folder (as archives usually do): look inside.
        children = [e.path for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")]
        if len(children) != 1:
            break
        folder = children[0]
    raise ValueError(
        f"{origin or path} is not a dataset kslim can read: expected a cifar-10-batches-py folder "
        "(data_batch_1..5, test_batch), a cifar-100-python folder (train, test), or an image folder "
        "(train/<class>/*.png|jpg and test/<class>/...)."
    )


def _dir_fingerprint(path):
    # Folder and file modification times two levels down: adding or removing an
    # image changes its class folder's time.
    entries = [os.path.abspath(path)]
    for dirpath, dirnames, filenames in os.walk(path):
        depth = os.path.relpath(dirpath, path).count(os.sep) + (dirpath != path)
        st = os.stat(dirpath)
        entries.append([os.path.relpath(dirpath, path), st.st_mtime_ns])
        if depth >= 2:
            dirnames[:] = []
            continue
        for f in sorted(filenames):
            st = os.stat(os.path.join(dirpath, f))
            entries.append([os.path.relpath(os.path.join(dirpath, f), path), st.st_size, st.st_mtime_ns])
        dirnames.sort()
    return entries


def check_split(split):
    """Raises ValueError unless `split` is "train" or "test"."""
    if split not in SPLITS:
        raise ValueError(
            f"split={split!r} is not available; kslim.data reads split='train' or split='test' "
            "(hold out a validation set from the training arrays yourself if you need one)."
        )


def check_limit(limit):
    """Raises unless `limit` is None or a positive int."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be None or a positive int, got {limit!r}.")
    if limit < 1:
        raise ValueError(f"limit={limit} must be at least 1 (or None for the whole split).")


def check_labels(y, where):
    """Refuses labels a classifier cannot train on: negative ones, naming the first."""
    if len(y) and int(np.min(y)) < 0:
        index = int(np.argmax(y < 0))
        raise ValueError(
            f"{where}: label {int(y[index])} of example {index} is negative; class labels must be "
            "0, 1, ..., num_classes - 1."
        )


def load_arrays(name, split="train", data_dir=None, limit=None):
    """Reads one split of a dataset as NumPy arrays: uint8 images and int64 labels.

    Use it where code needs the raw pixels rather than a `tf.data` pipeline: a
    representative set for int8 TFLite export, a benchmark's fixed batch, your
    own preprocessing. `kslim.data.load` is this plus normalisation,
    augmentation, shuffling and batching.

    Names and paths are resolved as in `kslim.data.load`; nothing is ever
    downloaded.

    Args:
        name: str or path-like, a tfds name (`"mnist"`, `"cifar10"`,
            `"cifar100"`, `"svhn_cropped"`) or a path to a `.npz`, a CIFAR
            python folder, an image folder, or a `.tar.gz` of a folder.
        split: `"train"` or `"test"`.
        data_dir: str or None, the TensorFlow Datasets folder for tfds names
            (default `$TFDS_DATA_DIR` or `~/tensorflow_datasets`), and the
            folder relative paths are taken from.
        limit: int or None, return only the first `limit` examples.

    Returns:
        `(x, y)`: `x` uint8 `(N, H, W, C)` (MNIST gets `C = 1`), `y` int64 `(N,)`.

    Raises:
        FileNotFoundError: if the dataset is not on this machine.
        ValueError: for a bad split or limit, or a file that is not a dataset.
        TypeError: for a name that is not a string or path.
        ImportError: for a prepared tfds dataset without tensorflow-datasets.

    Example:

    >>> x, y = kslim.data.load_arrays("mnist", "test", limit=100)
    >>> x.shape, x.dtype, y[:3]
    ((100, 28, 28, 1), dtype('uint8'), array([7, 2, 1]))
    """
    check_split(split)
    check_limit(limit)
    return resolve(name, data_dir).read(split, limit)


def info(name, data_dir=None):
    """Describes a dataset: image shape, classes, split sizes, normalisation statistics.

    Use it to build a model that fits the data (`num_classes`, `image_shape`)
    and to preprocess inputs at inference time the way `kslim.data.load` does
    in training (`(x / 255 - mean) / std`).

    Args:
        name: str or path-like, as in `kslim.data.load`.
        data_dir: str or None, as in `kslim.data.load`.

    Returns:
        A dict with `format` (`"npz"`, `"cifar10"`, `"cifar100"`,
        `"image_folder"` or `"tfds"`), `path` (the file or folder read),
        `image_shape` (H, W, C), `num_classes`, `class_names` (list or None),
        `train_examples`, `test_examples`, `mean` and `std` (per channel,
        [0, 1] scale) and `augment` (whether `load` augments its training
        split by default).

    Raises:
        FileNotFoundError, ValueError, TypeError, ImportError: as `load_arrays`.

    Example:

    >>> kslim.data.info("mnist")["num_classes"]
    10
    """
    source = resolve(name, data_dir)
    x, y = source.read("train")
    try:
        y_test = source.read("test")[1]
    except FileNotFoundError:
        y_test = np.zeros((0,), np.int64)
    names = source.class_names()
    num_classes = len(names) if names else int(y.max()) + 1
    if not names and source.kind == "npz":  # the classes are the labels (CIFAR's pickles name theirs)
        _check_classes_present(y, num_classes, source.origin)
    if len(y_test) and int(y_test.max()) >= num_classes:
        where = int(np.argmax(y_test >= num_classes))
        raise ValueError(
            f"{source.origin} (test split): label {int(y_test[where])} of example {where} is out of "
            f"range: the training split has {num_classes} classes (labels 0..{num_classes - 1}); fix "
            "the test labels or add the class to the training split."
        )
    n_test = len(y_test)
    mean, std = source.normalization()
    shape = tuple(int(d) for d in x.shape[1:])
    return {
        "format": source.kind,
        "path": source.path,
        "image_shape": shape,
        "num_classes": num_classes,
        "class_names": names,
        "train_examples": int(len(y)),
        "test_examples": int(n_test),
        "mean": tuple(mean),
        "std": tuple(std),
        "augment": default_augment(source, "train", shape),
    }


def _check_classes_present(y, num_classes, origin):
    """Refuses training labels with gaps: a model gets one output per label up to the largest, so a stray
    label (99 among 0..9) would make a 100-class model whose extra classes never train."""
    present = np.bincount(y, minlength=num_classes) > 0
    if present.all():
        return
    missing = np.flatnonzero(~present)
    index = int(np.argmax(y == y.max()))
    raise ValueError(
        f"{origin} (train split): the labels are not 0..K-1: label {int(y[index])} of example {index} is the "
        f"largest, but {len(missing)} of the classes below it ({', '.join(map(str, missing[:5]))}"
        f"{', ...' if len(missing) > 5 else ''}) have no example; fix that label, or number the classes "
        "0, 1, ..., K-1."
    )


def default_augment(source, split, image_shape):
    """The paper's rule: augment the training split of 32x32 colour images, except SVHN."""
    return split == "train" and tuple(image_shape) == (32, 32, 3) and not source.digits
