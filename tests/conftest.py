"""Shared test setup: quiet TensorFlow, deterministic seeds, the real data in ../shared/data."""

import atexit
import os
import pathlib
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests leave no trace: kslim's caches (latency measurements, channel tiles, decoded data) go to a folder of
# this test session, removed at its end, never to the user's ~/.cache/kslim. Subprocesses inherit it.
_CACHE = tempfile.mkdtemp(prefix="kslim-test-cache-")
os.environ["KSLIM_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

# Two logical CPUs, so tf.distribute.MirroredStrategy can be tested on a 2-core machine.
# This must happen before TensorFlow initialises its devices, hence at import time.
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
import numpy as np  # noqa: E402
import pytest  # noqa: E402

SHARED_DATA = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST as (x_train, y_train, x_test, y_test), uint8, from ../shared/data/mnist.npz."""
    path = SHARED_DATA / "mnist.npz"
    if not path.exists():
        pytest.fail(f"{path} is missing: the tests need the shared data folder beside the repository.")
    with np.load(path) as f:
        return f["x_train"], f["y_train"], f["x_test"], f["y_test"]


@pytest.fixture(scope="session")
def mirrored():
    """One MirroredStrategy over the two logical CPUs for the whole session.

    Two strategies in one process can reuse collective instance keys and abort
    each other's all-reduce with a shape mismatch, so tests share this one.
    """
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
