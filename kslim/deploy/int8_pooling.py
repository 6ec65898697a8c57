"""Average pooling in an int8 file as a depthwise convolution, which LiteRT's XNNPACK runs.

LiteRT's XNNPACK delegate (ai-edge-litert 2.3) takes no int8 AVERAGE_POOL_2D:
it runs in TFLite's own kernel, outside the delegated graph, and a DenseNet
transition's 2x2 pooling took about a fifth of an int8 DenseNet-16's time
(`benchmarks/deploy.py`'s int8 rows). A depthwise convolution whose kernel is
the pooling window, every weight 1 / (window size), computes the same
average, and XNNPACK runs it in int8.
"""

import keras
import numpy as np

from kslim.pruning import config_edit


def replaceable_pools(model):
    """Names of the valid, non-overlapping, channels-last 2-D average poolings of `model`."""
    return [layer.name for layer in model.layers
            if isinstance(layer, keras.layers.AveragePooling2D) and layer.padding == "valid"
            and layer.data_format == "channels_last" and tuple(layer.pool_size) == tuple(layer.strides)]


def average_pools_as_depthwise(model):
    """Returns a copy of `model` whose `replaceable_pools` are depthwise convolutions computing the
    same averages; `model` itself when it has none."""
    names = replaceable_pools(model)
    if not names:
        return model
    config, sequential = config_edit.editable(model)
    pools = [model.get_layer(name) for name in names]
    config_edit.replace(config, {
        pool.name: keras.layers.DepthwiseConv2D(pool.pool_size, strides=pool.strides, use_bias=False, name=pool.name,
                                                dtype=pool.dtype_policy)
        for pool in pools}, sequential)
    rebuilt = config_edit.rebuild(config, sequential)
    for layer in rebuilt.layers:
        if layer.name in names:
            kernel = layer.get_weights()[0]
            layer.set_weights([np.full_like(kernel, 1.0 / np.prod(kernel.shape[:2]))])
        else:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return rebuilt
