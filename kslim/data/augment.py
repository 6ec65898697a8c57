"""The paper's preprocessing, on whole batches: per-channel normalisation and pad-4 random crop + flip.

Network slimming trains on CIFAR with "shifting/mirroring" (Liu et al., ICCV
2017, sec. 5.1): each training image is zero-padded by 4 pixels on every side,
a random 32x32 window is cut from the padded image, and the result is
mirrored left-right with probability 1/2. As in the paper's Torch code
(fb.resnet.torch's `ColorNormalize`, then `HorizontalFlip`, `RandomCrop(32, 4)`),
normalisation comes first, so the zero padding is the dataset's mean colour,
not black.

The ops work on a batch at once (two gathers, no per-image Python), take an
explicit stateless seed, and are written with `tf` ops for `tf.data`.
"""

import tensorflow as tf


def normalize(images, mean=None, std=None):
    """Scales uint8 images to float32 `[0, 1]`, then `(x - mean) / std` per channel if given.

    Args:
        images: uint8 tensor `(..., C)`.
        mean: sequence of C floats on the [0, 1] scale, or None.
        std: sequence of C floats on the [0, 1] scale, or None.

    Returns:
        A float32 tensor of the same shape.
    """
    x = tf.cast(images, tf.float32) / 255.0
    if mean is not None:
        std = [s if s > 0 else 1.0 for s in std]  # a constant channel stays 0 instead of inf
        x = (x - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)
    return x


def pad_crop_flip(images, seed, pad=4, flip=True):
    """Zero-pads a batch by `pad` pixels, cuts a random window of the original size, mirrors at random.

    Every image gets its own offsets (uniform in `0..2*pad`) and coin flip.

    Args:
        images: float tensor `(B, H, W, C)` with static H and W.
        seed: int tensor of shape `(2,)`, the stateless random seed of this batch.
        pad: int, the padding (4 in the paper).
        flip: bool, whether to mirror left-right with probability 1/2 (off
            for digits, which flipping turns into other shapes).

    Returns:
        A tensor of the same shape and dtype.
    """
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    top = tf.random.stateless_uniform([batch, 1], seeds[0], 0, 2 * pad + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform([batch, 1], seeds[1], 0, 2 * pad + 1, dtype=tf.int32)
    rows = top + tf.range(height)[None, :]
    cols = left + tf.range(width)[None, :]
    if flip:
        mirrored = tf.random.stateless_uniform([batch], seeds[2]) < 0.5
        cols = tf.where(mirrored[:, None], tf.reverse(cols, axis=[1]), cols)
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(out, cols, axis=2, batch_dims=1)
