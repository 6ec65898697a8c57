"""TensorFlow Datasets that are already prepared on disk; kslim never downloads.

A name such as `"cifar10"` (or `"name/config"`, `"name:1.2.3"`) is looked up as
`<data_dir>/<name>[/<config>]/<version>/dataset_info.json`, where `data_dir`
defaults to `$TFDS_DATA_DIR` or `~/tensorflow_datasets`, as in tfds itself.
That check is plain file-system work, so a missing dataset fails at once
instead of after minutes of download retries on a machine with no internet.
A prepared dataset is read with `tfds.builder_from_directory`, which needs
neither network access nor the dataset's builder code. `tensorflow_datasets`
is imported only then (it is the optional extra `kslim[tfds]`).
"""

import os
import re

import numpy as np

from kslim.data.npz import images_and_labels

KNOWN = ("mnist", "cifar10", "cifar100", "svhn_cropped")
_NAME = re.compile(r"^([a-z0-9_]+)(?:/([A-Za-z0-9_.-]+))?(?::([0-9]+\.[0-9]+\.[0-9]+))?$")
_VERSION = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")


def looks_like_name(name):
    """True if `name` has the form of a tfds name (`name`, `name/config`, `name:1.0.0`)."""
    return bool(_NAME.match(name))


def base_name(name):
    """The dataset part of a tfds name: `"cifar10"` for `"cifar10/plain:3.0.2"`."""
    return _NAME.match(name).group(1)


def default_data_dir():
    """`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`: where tfds itself looks."""
    return os.path.abspath(os.path.expanduser(os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"))


def find_prepared(name, data_dir=None):
    """Finds the folder of a prepared tfds dataset.

    Args:
        name: str, a tfds name (`"cifar10"`, `"name/config"`, `"name:1.0.0"`).
        data_dir: str or None, the tfds data folder; None for the default.

    Returns:
        `(version_dir, looked_in)`: the prepared version's folder (the newest
        one if no version is named) or None, and the folder searched.
    """
    dataset, config, version = _NAME.match(name).groups()
    data_dir = os.path.abspath(os.path.expanduser(data_dir)) if data_dir else default_data_dir()
    looked_in = os.path.join(data_dir, dataset, *([config] if config else []))
    if not os.path.isdir(looked_in):
        return None, looked_in
    versions = [
        v
        for v in os.listdir(looked_in)
        if _VERSION.match(v) and os.path.isfile(os.path.join(looked_in, v, "dataset_info.json"))
    ]
    if version is not None:
        versions = [v for v in versions if v == version]
    if not versions:
        return None, looked_in
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    return os.path.join(looked_in, newest), looked_in


def read(version_dir, split, limit=None):
    """Reads one split of a prepared tfds dataset as arrays.

    Args:
        version_dir: str, the prepared version's folder (from `find_prepared`).
        split: `"train"` or `"test"`.
        limit: int or None, read only the first `limit` examples.

    Returns:
        `(x, y)`: uint8 `(N, H, W, C)` and int64 `(N,)`.

    Raises:
        ImportError: if tensorflow-datasets is not installed.
        ValueError: if the dataset has no such split or no (image, label) keys.
    """
    builder = _builder(version_dir)
    if split not in builder.info.splits:
        raise ValueError(
            f"tfds dataset {version_dir} has splits {sorted(builder.info.splits)}, not '{split}'."
        )
    ds = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    if limit is not None:
        ds = ds.take(limit)
    xs, ys = [], []
    for x, y in ds.batch(4096).as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    return images_and_labels(np.concatenate(xs), np.concatenate(ys), source=f"{version_dir} [{split}]")


def class_names(version_dir):
    """The label names of a prepared tfds dataset, or None if its label has none."""
    builder = _builder(version_dir)
    label = builder.info.features[builder.info.supervised_keys[1]]
    return list(label.names) if hasattr(label, "names") else None


def num_examples(version_dir, split):
    """The number of examples in `split` from the dataset's metadata (nothing is read)."""
    return int(_builder(version_dir).info.splits[split].num_examples)


def _builder(version_dir):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise ImportError(
            f"Reading the prepared TensorFlow Datasets folder {version_dir} needs the package "
            "tensorflow-datasets: pip install 'kslim[tfds]'."
        ) from e
    builder = tfds.builder_from_directory(version_dir)
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(
            f"tfds dataset {version_dir} has no (image, label) supervised keys "
            f"(got {keys}); kslim.data reads image classification datasets."
        )
    return builder
