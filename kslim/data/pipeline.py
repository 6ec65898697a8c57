"""`load`: a dataset as a batched `tf.data` pipeline with the paper's preprocessing."""

from kslim.data import sources


def load(
    name,
    split="train",
    data_dir=None,
    batch_size=64,
    augment=None,
    shuffle=None,
    normalize=True,
    limit=None,
    seed=None,
):
    """Loads a dataset as a `tf.data.Dataset` of `(images, labels)` batches, preprocessed as in the paper.

    Use it to feed `model.fit` / `model.evaluate` with MNIST, CIFAR-10/100,
    SVHN or your own small-image dataset, offline: nothing is ever
    downloaded, and a dataset that is not on the machine fails at once with
    the fix in the message.

    What `name` may be:

    - a TensorFlow Datasets name (`"mnist"`, `"cifar10"`, `"cifar100"`,
      `"svhn_cropped"`, or any image-classification tfds name) that is
      already prepared in `data_dir`; prepare it where there is internet with
      `tfds build NAME --data_dir=DIR`. `"mnist"` falls back to the copy
      embedded in kslim (`kslim.data.mnist_path()`), so it always works.
    - a Keras-style `.npz` with `x_train, y_train, x_test, y_test`.
    - a `cifar-10-batches-py` or `cifar-100-python` folder (the official
      python versions; CIFAR-100 gives its 100 fine labels).
    - an image folder `train/<class>/*.png|jpg`, `test/<class>/...`: labels
      are the class folders in alphabetical order; all images one size.
    - a `.tar.gz` / `.tgz` / `.tar` of such a folder, extracted once into
      kslim's cache (`$KSLIM_CACHE_DIR`, default `~/.cache/kslim`), where
      decoded image folders are also cached as `.npy`.

    Preprocessing (Liu et al., "Learning Efficient Convolutional Networks
    through Network Slimming", ICCV 2017, sec. 5.1, and the paper's Torch code):

    - Pixels are scaled to [0, 1], then normalised per channel with the
      training split's mean and standard deviation: the published figures for
      MNIST (0.1307 / 0.3081), CIFAR-10 (0.4914, 0.4822, 0.4465 /
      0.2470, 0.2435, 0.2616) and CIFAR-100, computed once (and cached) for
      any other dataset. `info(name)["mean"]` gives the figures used.
    - Augmentation ("shifting/mirroring"): zero-pad 4 pixels, crop a random
      window of the original size, mirror left-right with probability 1/2;
      applied after normalisation, so the padding is the mean colour. By
      default it is on for the training split of 32x32 colour images (CIFAR)
      and off otherwise. SVHN is not augmented by default: the paper names
      augmentation for CIFAR only and follows the SVHN practice of the
      networks it slims (DenseNet trains SVHN without augmentation). Digit
      datasets (MNIST, SVHN) are never mirrored, even with `augment=True`.
    - The paper trains on SVHN's train + extra sets (604,388 images); tfds's
      `svhn_cropped` "train" split holds only the 73,257 train images.

    The split is held in memory as uint8 (CIFAR-10's training split is 150 MB);
    batches are gathered, normalised and augmented whole, then prefetched.

    Args:
        name: str or path-like, a tfds name or a dataset path (see above).
        split: `"train"` or `"test"`.
        data_dir: str or None, the TensorFlow Datasets folder for tfds names
            (default `$TFDS_DATA_DIR` or `~/tensorflow_datasets`), and the
            folder that relative paths in `name` are taken from.
        batch_size: int, examples per batch (64 in the paper); the last batch
            may be smaller (nothing is dropped).
        augment: bool or None, pad-4 crop + flip; None for the paper's default
            (training split of 32x32 colour data, except SVHN).
        shuffle: bool or None, reshuffle the examples every epoch; None means
            True for `"train"` and False for `"test"`.
        normalize: bool, per-channel mean/std normalisation; False gives
            floats in [0, 1].
        limit: int or None, use only the first `limit` examples of the split
            (for tests and quick benchmarks; image folders are ordered
            round-robin over the classes, so any prefix is class-balanced).
        seed: int or None, seed of the shuffling and augmentation; with a seed
            the sequence of epochs is reproducible (under the same TensorFlow
            global seed, which `keras.utils.set_random_seed` sets).

    Returns:
        A `tf.data.Dataset` of `(images, labels)`: float32 `(B, H, W, C)`
        (MNIST is `(B, 28, 28, 1)`) and int64 `(B,)`.

    Raises:
        FileNotFoundError: if the dataset is not on this machine (it says where
            kslim looked and how to get it).
        ValueError: for a bad split, batch size or limit, or a file that is not
            a dataset.
        TypeError: for arguments of the wrong type.
        ImportError: for a prepared tfds dataset without tensorflow-datasets
            (`pip install 'kslim[tfds]'`).

    Example:

    >>> train = kslim.data.load("mnist", batch_size=128)
    >>> test = kslim.data.load("mnist", "test", batch_size=256)
    >>> model.fit(train, validation_data=test, epochs=1)
    >>> kslim.data.load("../shared/data/cifar10-jpeg.tar.gz", limit=640)
    """
    sources.check_split(split)
    sources.check_limit(limit)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    for arg, value in (("augment", augment), ("shuffle", shuffle)):
        if value not in (None, True, False):
            raise TypeError(f"{arg} must be True, False or None (the default rule), got {value!r}.")
    if normalize not in (True, False):
        raise TypeError(f"normalize must be True or False, got {normalize!r}.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"seed must be an int or None, got {seed!r}.")

    source = sources.resolve(name, data_dir)
    x, y = source.read(split, limit)
    if augment is None:
        augment = sources.default_augment(source, split, x.shape[1:])
    if shuffle is None:
        shuffle = split == "train"
    mean, std = source.normalization() if normalize else (None, None)
    return _pipeline(x, y, batch_size, augment, not source.digits, shuffle, mean, std, seed)


def _pipeline(x, y, batch_size, augment, flip, shuffle, mean, std, seed):
    import tensorflow as tf

    from kslim.data import augment as ops

    images = tf.constant(x)
    labels = tf.constant(y)
    count = len(y)
    # Shuffle and batch indices, then gather whole batches: far cheaper than a
    # per-example pipeline, and the shuffle buffer holds ints, not images.
    ds = tf.data.Dataset.range(count)
    if shuffle:
        ds = ds.shuffle(count, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=False)

    if augment:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds)

    def prepare(index, batch_seed=None):
        batch = ops.normalize(tf.gather(images, index), mean, std)
        if augment:
            batch = ops.pad_crop_flip(batch, batch_seed, flip=flip)
        return batch, tf.gather(labels, index)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
