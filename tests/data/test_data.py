"""kslim.data: every offline format, the paper's preprocessing, and fast, clear failures."""

import os
import pickle
import tarfile
import time

import numpy as np
import pytest
import tensorflow as tf

import kslim
from kslim.data import stats

CIFAR10_MEAN, CIFAR10_STD = stats.KNOWN["cifar10"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    # Caches go to a fresh folder, and the default tfds folder is empty, so nothing outside the test is read.
    monkeypatch.setenv("KSLIM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "no_tfds"))


def _images(n, h=32, w=32, c=3, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _batches(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(xs), np.concatenate(ys)


def _write_cifar_batch(path, x, labels, label_key):
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)  # the official row layout: R plane, G plane, B plane
    with open(path, "wb") as f:
        pickle.dump({b"batch_label": b"test", label_key: list(labels), b"data": rows}, f, protocol=2)


@pytest.fixture
def cifar10_dir(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    x, y = _images(15, seed=1), np.arange(15) % 10
    for i in range(5):
        part = slice(3 * i, 3 * i + 3)
        _write_cifar_batch(root / f"data_batch_{i + 1}", x[part], y[part], b"labels")
    x_test, y_test = _images(4, seed=2), np.array([3, 1, 4, 1])
    _write_cifar_batch(root / "test_batch", x_test, y_test, b"labels")
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f, protocol=2)
    return root, (x, y, x_test, y_test)


@pytest.fixture
def image_folder(tmp_path):
    """train/{cat,airplane,dog} (created out of order) with PNGs, one JPEG; test/ with two classes."""
    root = tmp_path / "imgs"
    rng = np.random.default_rng(3)
    made = {}
    for split, counts in (("train", {"cat": 3, "airplane": 2, "dog": 3}), ("test", {"dog": 1, "cat": 2})):
        for cls, n in counts.items():
            (root / split / cls).mkdir(parents=True)
            for k in range(n):
                image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                jpeg = (split, cls, k) == ("train", "dog", 2)
                encode, ext = (tf.io.encode_jpeg, "jpg") if jpeg else (tf.io.encode_png, "png")
                data = encode(image).numpy()
                (root / split / cls / f"{k:04d}.{ext}").write_bytes(data)
                made[(split, cls, k)] = tf.io.decode_image(data).numpy()
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return root, made


def test_npz_reads_both_splits_and_normalises_with_training_statistics(tmp_path):
    x_train, x_test = _images(12, 8, 8, 3, seed=4), _images(5, 8, 8, 3, seed=5)
    y_train, y_test = (np.arange(12) % 4).reshape(-1, 1).astype(np.uint8), np.array([3, 2, 1, 0, 0])
    path = tmp_path / "small.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)

    x, y = kslim.data.load_arrays(str(path), "train")
    assert x.dtype == np.uint8 and y.dtype == np.int64 and x.shape == (12, 8, 8, 3) and y.shape == (12,)
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(y, y_train[:, 0])
    np.testing.assert_array_equal(kslim.data.load_arrays(path, "test", limit=2)[1], [3, 2])

    raw, labels = _batches(kslim.data.load(path, batch_size=5, normalize=False, shuffle=False))
    assert raw.dtype == np.float32 and raw.shape == (12, 8, 8, 3)
    np.testing.assert_allclose(raw, x_train / 255.0, atol=1e-6)
    np.testing.assert_array_equal(labels, y_train[:, 0])

    # Statistics of an unknown dataset come from its training split, so that split normalises to 0 / 1 ...
    train, _ = _batches(kslim.data.load(path, batch_size=5, shuffle=False))
    np.testing.assert_allclose(train.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(axis=(0, 1, 2)), 1.0, atol=1e-4)
    # ... and the test split is normalised with the same (training) figures.
    test, _ = _batches(kslim.data.load(path, "test", batch_size=5))
    mean, std = kslim.data.info(path)["mean"], kslim.data.info(path)["std"]
    np.testing.assert_allclose(test, (x_test / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    assert os.listdir(tmp_path / "cache" / "stats")  # computed once, cached


def test_cifar10_pickle_folder(cifar10_dir):
    root, (x_train, y_train, x_test, y_test) = cifar10_dir
    x, y = kslim.data.load_arrays(root, "train")
    assert x.shape == (15, 32, 32, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x, x_train)  # channel-major rows become NHWC images
    np.testing.assert_array_equal(y, y_train)  # batches 1..5 in order
    x, y = kslim.data.load_arrays(root, "test")
    np.testing.assert_array_equal(x, x_test)
    np.testing.assert_array_equal(y, y_test)

    info = kslim.data.info(root)
    assert info["format"] == "cifar10" and info["class_names"][:2] == ["c0", "c1"]
    assert (info["num_classes"], info["train_examples"], info["test_examples"]) == (10, 15, 4)

    # CIFAR-10 uses the published statistics, and its test split is not augmented or shuffled.
    test, labels = _batches(kslim.data.load(root, "test", batch_size=3))
    np.testing.assert_allclose(test, (x_test / 255.0 - CIFAR10_MEAN) / CIFAR10_STD, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(labels, y_test)


def test_cifar100_pickle_folder_uses_fine_labels(tmp_path):
    root = tmp_path / "cifar-100-python"
    root.mkdir()
    x_train, x_test = _images(6, seed=6), _images(2, seed=7)
    for name, x, fine in (("train", x_train, [99, 0, 42, 7, 7, 1]), ("test", x_test, [5, 98])):
        rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
        with open(root / name, "wb") as f:
            pickle.dump({b"data": rows, b"fine_labels": fine, b"coarse_labels": [1] * len(x)}, f, protocol=2)
    x, y = kslim.data.load_arrays(root, "train")
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(y, [99, 0, 42, 7, 7, 1])
    np.testing.assert_array_equal(kslim.data.load_arrays(root, "test")[1], [5, 98])
    assert kslim.data.info(root)["mean"] == stats.KNOWN["cifar100"][0]


def test_pickle_that_is_not_a_cifar_batch_is_refused(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        with open(root / name, "wb") as f:
            pickle.dump({b"data": os.getcwd}, f)  # a callable: what a malicious pickle would carry
    with pytest.raises(ValueError, match="data_batch_1 is not a CIFAR python batch"):
        kslim.data.load_arrays(root)


def test_image_folder_labels_order_pixels_and_cache(image_folder, tmp_path):
    root, made = image_folder
    x, y = kslim.data.load_arrays(root, "train")
    assert x.shape == (8, 32, 32, 3) and x.dtype == np.uint8
    # Alphabetical classes (airplane=0, cat=1, dog=2), examples round-robin over them.
    np.testing.assert_array_equal(y, [0, 1, 2, 0, 1, 2, 1, 2])
    order = [(c, k) for k in range(3) for c in ("airplane", "cat", "dog") if (c, k) != ("airplane", 2)]
    for image, (cls, k) in zip(x, order):
        # PNGs exactly; the JPEG as tf.io decodes it.
        np.testing.assert_array_equal(image, made[("train", cls, k)])
    assert kslim.data.info(root)["class_names"] == ["airplane", "cat", "dog"]

    x_test, y_test = kslim.data.load_arrays(root, "test")
    np.testing.assert_array_equal(y_test, [1, 2, 1])  # labels from the training classes
    np.testing.assert_array_equal(x_test[1], made[("test", "dog", 0)])

    # Decoded arrays are cached and reused: a corrupt image no longer matters once cached.
    assert any("train" in d for d in os.listdir(tmp_path / "cache" / "arrays"))
    (root / "train" / "airplane" / "0000.png").write_bytes(b"garbage")
    np.testing.assert_array_equal(kslim.data.load_arrays(root, "train")[0], x)
    # A listing change (a new image) invalidates the entry.
    (root / "train" / "dog" / "0009.png").write_bytes(tf.io.encode_png(x[0]).numpy())
    with pytest.raises(ValueError, match=r"0000.png is not a readable image"):
        kslim.data.load_arrays(root, "train")


def test_image_folder_limit_decodes_a_class_balanced_prefix(image_folder):
    root, _ = image_folder
    x, y = kslim.data.load_arrays(root, "train", limit=3)
    assert x.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(y, [0, 1, 2])


def test_image_folder_of_mixed_sizes_names_the_odd_file(image_folder):
    root, _ = image_folder
    small = tf.io.encode_png(np.zeros((16, 16, 3), np.uint8)).numpy()
    (root / "train" / "dog" / "0005.png").write_bytes(small)
    with pytest.raises(ValueError, match=r"0005.png is 16x16 .* must have one size"):
        kslim.data.load_arrays(root, "train")


def test_a_corrupt_image_is_named_in_one_line_in_a_folder_and_in_an_archive(image_folder, tmp_path):
    root, _ = image_folder
    (root / "train" / "dog" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n torn")
    with pytest.raises(ValueError) as folder_error:
        kslim.data.load_arrays(root, "train")
    message = str(folder_error.value)
    assert "\n" not in message and "function_node" not in message
    assert message.startswith(f"{root / 'train' / 'dog' / '0001.png'} is not a readable image (")
    assert "replace it or delete it" in message
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="imgs")
    with pytest.raises(ValueError, match=rf"^{archive}, file train/dog/0001.png is not a readable "
                                         r"image \("):
        kslim.data.load(archive)


def test_corrupt_npz_and_tarball_files_are_named_with_their_fault(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, x_train=_images(4, 8, 8, 1), y_train=np.arange(4) % 2,
             x_test=_images(2, 8, 8, 1), y_test=np.array([0, 1]))
    (tmp_path / "torn.npz").write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"torn.npz is not a readable .npz file \(.*\); it may be truncated"):
        kslim.data.load_arrays(tmp_path / "torn.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"text.npz is not a readable .npz file \(it is not a zip archive\)"):
        kslim.data.info(tmp_path / "text.npz")
    archive = tmp_path / "torn.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(good, arcname="data/good.npz")
    archive.write_bytes(archive.read_bytes()[:100])
    with pytest.raises(ValueError) as error:
        kslim.data.load_arrays(archive)
    assert str(error.value).startswith(f"Cannot extract {archive}: ") and "\n" not in str(error.value)


def test_negative_and_out_of_range_labels_are_refused_naming_the_example(tmp_path):
    x = _images(4, 8, 8, 1)
    np.savez(tmp_path / "neg.npz", x_train=x, y_train=np.array([0, 1, -1, 1]), x_test=x[:2],
             y_test=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"neg.npz \(train split\): label -1 of example 2 is negative"):
        kslim.data.load(tmp_path / "neg.npz")
    np.savez(tmp_path / "range.npz", x_train=x, y_train=np.array([0, 1, 0, 1]), x_test=x[:2],
             y_test=np.array([0, 5]))
    with pytest.raises(ValueError, match=r"range.npz \(test split\): label 5 of example 1 is out of range: "
                                         r"the training split has 2 classes"):
        kslim.data.info(tmp_path / "range.npz")
    # One stray training label would make a 100-class model whose extra classes never train.
    x = _images(40, 8, 8, 1)
    y = np.arange(40) % 10
    y[17] = 99
    np.savez(tmp_path / "stray.npz", x_train=x, y_train=y, x_test=x[:2], y_test=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"stray.npz \(train split\): the labels are not 0..K-1: label 99 of "
                                         r"example 17 is the largest, but 89 of the classes below it \(10, 11, 12, "
                                         r"13, 14, ...\) have no example; fix that label"):
        kslim.data.info(tmp_path / "stray.npz")


def test_tar_gz_of_image_folder_is_extracted_once(image_folder, tmp_path):
    root, _ = image_folder
    archive = tmp_path / "imgs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="imgs")
    x, y = kslim.data.load_arrays(archive, "train")
    np.testing.assert_array_equal(x, kslim.data.load_arrays(root, "train")[0])
    np.testing.assert_array_equal(kslim.data.load_arrays(archive, "test")[1], [1, 2, 1])
    extracted = os.listdir(tmp_path / "cache" / "archives")
    assert len(extracted) == 1 and extracted[0].startswith("imgs-")
    stamp = os.stat(tmp_path / "cache" / "archives" / extracted[0]).st_mtime_ns
    batch, labels = next(iter(kslim.data.load(archive, batch_size=8, shuffle=False, augment=False)))
    assert batch.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(labels, y)
    assert os.stat(tmp_path / "cache" / "archives" / extracted[0]).st_mtime_ns == stamp


def test_augmentation_pads_crops_and_flips_but_keeps_labels(tmp_path):
    x_train = _images(40, seed=8)
    y_train = np.arange(40) % 10
    path = tmp_path / "colour32.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_train[:8], y_test=y_train[:8])
    assert kslim.data.info(path)["augment"] is True

    def first_epoch(**kw):
        return _batches(kslim.data.load(path, batch_size=16, shuffle=False, normalize=False, **kw))

    plain, labels = first_epoch(augment=False)
    augmented, aug_labels = first_epoch(seed=3)  # augment=None: on for 32x32 colour training data
    np.testing.assert_array_equal(aug_labels, labels)
    assert augmented.shape == plain.shape and augmented.dtype == np.float32
    assert not np.allclose(augmented, plain)
    padded = np.pad(plain, [(0, 0), (4, 4), (4, 4), (0, 0)])
    flips = shifts = 0
    for i in range(len(plain)):
        windows = {
            (dy, dx, f): padded[i, dy : dy + 32, dx : dx + 32][:, ::-1 if f else 1]
            for dy in range(9)
            for dx in range(9)
            for f in (False, True)
        }
        matches = [key for key, window in windows.items() if np.array_equal(augmented[i], window)]
        assert matches, f"augmented image {i} is not a flipped or unflipped 32x32 window of the padded image"
        flips += all(f for _, _, f in matches)
        shifts += all((dy, dx) != (4, 4) for dy, dx, _ in matches)
    assert 0 < flips < len(plain) and shifts > len(plain) // 2

    np.testing.assert_array_equal(first_epoch(seed=3)[0], augmented)  # reproducible with a seed
    # The test split is not augmented by default.
    test, _ = _batches(kslim.data.load(path, "test", normalize=False))
    np.testing.assert_allclose(test, x_train[:8] / 255.0, atol=1e-6)


def test_shuffling_batches_and_epochs(tmp_path):
    path = tmp_path / "n12.npz"
    y_train = np.arange(12)
    np.savez(path, x_train=_images(12, 4, 4, 1), y_train=y_train, x_test=_images(2, 4, 4, 1), y_test=[0, 1])
    ds = kslim.data.load(path, batch_size=5, seed=7)
    epochs = [[y.numpy() for _, y in ds] for _ in range(2)]
    assert [len(y) for y in epochs[0]] == [5, 5, 2]  # nothing dropped
    first, second = np.concatenate(epochs[0]), np.concatenate(epochs[1])
    assert sorted(first) == sorted(second) == list(range(12))
    assert list(first) != list(range(12)) and list(first) != list(second)  # shuffled, anew each epoch
    again = _batches(kslim.data.load(path, batch_size=5, seed=7))[1]
    np.testing.assert_array_equal(again, first)  # reproducible
    np.testing.assert_array_equal(_batches(kslim.data.load(path, batch_size=5, shuffle=False))[1], y_train)


def test_embedded_mnist_is_the_offline_default():
    assert kslim.data.mnist_path().endswith(os.path.join("kslim", "data", "mnist.npz"))
    x, y = kslim.data.load_arrays("mnist", "train", limit=5)
    assert x.shape == (5, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, [5, 0, 4, 1, 9])  # MNIST's canonical first training labels
    np.testing.assert_array_equal(kslim.data.load_arrays("mnist", "test", limit=3)[1], [7, 2, 1])

    images, labels = next(iter(kslim.data.load("mnist", batch_size=64, limit=64, shuffle=False)))
    assert images.shape == (64, 28, 28, 1) and images.dtype == tf.float32 and labels.dtype == tf.int64
    expected = (kslim.data.load_arrays("mnist", limit=64)[0] / 255.0 - 0.1307) / 0.3081
    np.testing.assert_allclose(images.numpy(), expected, rtol=1e-5, atol=1e-5)
    info = kslim.data.info("mnist")
    assert (info["train_examples"], info["test_examples"], info["augment"]) == (60000, 10000, False)


def test_prepared_tfds_dataset_is_read_offline(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    x_train, y_train = _images(6, seed=9), np.array([0, 1, 2, 0, 1, 2])
    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(names=["a", "b", "c"]),
        }
    )
    folder = tmp_path / "tfds" / "cifar10" / "3.0.2"
    folder.mkdir(parents=True)
    for split, x, y in (("train", x_train, y_train), ("test", x_train[:2], y_train[:2])):
        with tf.io.TFRecordWriter(str(folder / f"cifar10-{split}.tfrecord-00000-of-00001")) as writer:
            for image, label in zip(x, y):
                writer.write(features.serialize_example({"image": image, "label": label}))
    tfds.folder_dataset.write_metadata(
        data_dir=str(folder),
        features=features,
        filename_template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        supervised_keys=("image", "label"),
    )
    x, y = kslim.data.load_arrays("cifar10", data_dir=tmp_path / "tfds")
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(y, y_train)
    info = kslim.data.info("cifar10", data_dir=str(tmp_path / "tfds"))
    assert (info["format"], info["class_names"], info["augment"]) == ("tfds", ["a", "b", "c"], True)
    assert info["mean"] == CIFAR10_MEAN


@pytest.mark.parametrize("name", ["cifar10", "svhn_cropped", "cifar100"])
def test_unprepared_tfds_name_fails_fast_with_the_fix(name, tmp_path):
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as err:
        kslim.data.load(name, data_dir=str(tmp_path / "empty"))
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert str(tmp_path / "empty" / name) in message and f"tfds build {name}" in message
    assert "cifar-10-batches-py" in message  # the offline alternative


def test_missing_path_and_unknown_files_fail_clearly(tmp_path):
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="No dataset at .*nowhere.npz"):
        kslim.data.load(str(tmp_path / "nowhere.npz"))
    assert time.monotonic() - start < 10
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="notes.txt: unknown file type"):
        kslim.data.load_arrays(tmp_path / "notes.txt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ValueError, match="is not a dataset kslim can read"):
        kslim.data.load_arrays(tmp_path / "empty_dir")
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ValueError, match=r"bad.npz lacks the keys \['x_train'"):
        kslim.data.load_arrays(tmp_path / "bad.npz")


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="split='validation' is not available.*'train' or split='test'"):
        kslim.data.load("mnist", split="validation")
    with pytest.raises(ValueError, match="limit=0 must be at least 1"):
        kslim.data.load_arrays("mnist", limit=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        kslim.data.load("mnist", batch_size=0)
    with pytest.raises(TypeError, match="augment must be True, False or None"):
        kslim.data.load("mnist", augment="yes")
    with pytest.raises(TypeError, match="name must be a dataset name or a path"):
        kslim.data.load(42)
