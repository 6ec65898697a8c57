"""Datasets for network slimming, offline, with the paper's preprocessing.

`load(name, split)` gives a batched `tf.data.Dataset` of normalised (and, for
CIFAR training, augmented) images; `load_arrays` the raw uint8 arrays; `info`
the image shape, classes and normalisation statistics. A name is a
TensorFlow Datasets name already prepared on disk, or the path of a Keras-style
`.npz`, a CIFAR python folder, an image folder or a `.tar.gz` of one. MNIST is
embedded (`mnist_path()`), so `load("mnist")` always works. Nothing is ever
downloaded.
"""

from kslim.data.npz import mnist_path as mnist_path
from kslim.data.pipeline import load as load
from kslim.data.sources import info as info
from kslim.data.sources import load_arrays as load_arrays
