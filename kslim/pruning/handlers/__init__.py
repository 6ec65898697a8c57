"""Layer handlers: what kslim knows about each layer kind, and the registry users extend.

`register_handler(MyLayer, MyHandler())` teaches kslim a custom layer; the
built-in Keras layers below are registered through the same call.
"""

import keras

from kslim.layers.border_bias import BorderBias
from kslim.layers.channel_mask import ChannelMask
from kslim.layers.channel_select import ChannelSelect
from kslim.pruning.handlers.base import ROLES as ROLES
from kslim.pruning.handlers.base import LayerHandler as LayerHandler
from kslim.pruning.handlers.base import get_handler as get_handler
from kslim.pruning.handlers.base import register_handler as register_handler
from kslim._internal import keras_api
from kslim.pruning.handlers import channelwise as _cw
from kslim.pruning.handlers import ops as _ops
from kslim.pruning.handlers import producers as _prod
from kslim.pruning.handlers import structure as _st

L = keras.layers


def _register_builtins():
    for cls in (L.Conv1D, L.Conv2D, L.Conv3D):
        register_handler(cls, _prod.ConvHandler())
    for cls in (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose):
        register_handler(cls, _prod.ConvTransposeHandler())
    for cls in (L.SeparableConv1D, L.SeparableConv2D):
        register_handler(cls, _prod.SeparableConvHandler())
    for cls in (L.DepthwiseConv1D, L.DepthwiseConv2D):
        register_handler(cls, _prod.DepthwiseConvHandler())
    register_handler(L.Dense, _prod.DenseHandler())
    register_handler(L.BatchNormalization, _cw.BatchNormalizationHandler())
    register_handler(ChannelMask, _cw.ChannelMaskHandler())
    register_handler(BorderBias, _cw.PerChannelHandler())  # adds a constant per position: not homogeneous
    register_handler(ChannelSelect, _st.BarrierHandler("'{name}' is an earlier channel selection"))
    register_handler(L.Activation, _cw.ActivationHandler())
    register_handler(L.Softmax, _cw.SoftmaxHandler())
    register_handler(L.ReLU, _cw.ReLUHandler())
    homogeneous = (
        L.LeakyReLU, L.PReLU, L.Identity,
        L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianDropout,
        L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
        L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
        L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D,
        L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D,
        L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D,
        L.Cropping1D, L.Cropping2D, L.Cropping3D,
        L.UpSampling1D, L.UpSampling2D, L.UpSampling3D,
    )
    for cls in homogeneous:
        register_handler(cls, _cw.PerChannelHandler(homogeneous=True))
    for cls in (L.ELU, L.GaussianNoise, L.AlphaDropout, L.ActivityRegularization):
        register_handler(cls, _cw.PerChannelHandler(keeps_zero=True))
    for cls in (L.Rescaling, L.Normalization):
        register_handler(cls, _cw.ConfigValuesHandler())
    register_handler(L.Multiply, _st.RoleHandler("multiply"))
    for cls in (L.Add, L.Subtract, L.Average, L.Maximum, L.Minimum):
        register_handler(cls, _st.RoleHandler("merge"))
    register_handler(L.Concatenate, _st.ConcatenateHandler())
    register_handler(L.Flatten, _st.FlattenHandler())
    register_handler(L.Reshape, _st.ReshapeHandler())
    register_handler(
        L.Permute, _st.BarrierHandler("'{name}' permutes axes", homogeneous=True)
    )
    for cls in (L.LayerNormalization, L.GroupNormalization, L.UnitNormalization):
        register_handler(cls, _st.BarrierHandler(
            "'{name}' normalises across channels, so every channel changes the others; "
            "use BatchNormalization, or add_channel_masks to prune the layers between such norms"
        ))


def _register_ops():
    """keras.ops calls, understood like their layer twins (`x + y` like Add, `ops.relu6` like ReLU(6))."""
    binary = {
        "Add": ("merge", "add"), "Subtract": ("merge", "add"), "Multiply": ("multiply", "multiply"),
        "Divide": ("barrier", "divide"), "TrueDivide": ("barrier", "divide"),
        "Maximum": ("merge", "extremum"), "Minimum": ("merge", "extremum"),
    }
    for cls in keras_api.operation_classes("numpy", binary):
        register_handler(cls, _ops.BinaryOpHandler(*binary[cls.__name__]))
    homogeneous = ["Relu", "LeakyRelu"]
    zero_at_zero = ["Relu6", "Silu", "HardSilu", "Gelu", "Elu", "Selu", "Softsign", "Tanh"]
    for cls in keras_api.operation_classes("nn", homogeneous):
        register_handler(cls, _ops.UnaryOpHandler(homogeneous=True))
    for cls in keras_api.operation_classes("nn", zero_at_zero):
        register_handler(cls, _ops.UnaryOpHandler(keeps_zero=True))
    for cls in keras_api.operation_classes("nn", ["Sigmoid", "HardSigmoid", "Softplus"]):
        register_handler(cls, _ops.UnaryOpHandler())
    for cls in keras_api.operation_classes("numpy", ["Tanh", "Abs", "Absolute", "Square", "Sqrt", "Clip"]):
        register_handler(cls, _ops.UnaryOpHandler(keeps_zero=True))
    for cls in keras_api.operation_classes("numpy", ["Exp"]):
        register_handler(cls, _ops.UnaryOpHandler())
    for cls in keras_api.operation_classes("numpy", ["Negative"]):
        register_handler(cls, _ops.UnaryOpHandler(homogeneous=True))
    for cls in keras_api.operation_classes("core", ["Cast"]):
        register_handler(cls, _ops.UnaryOpHandler(homogeneous=True))
    for cls in keras_api.operation_classes("numpy", ["Mean", "Max", "Min", "Sum", "Amax", "Amin"]):
        register_handler(cls, _ops.ReduceOpHandler())
    for cls in keras_api.operation_classes("numpy", ["Concatenate"]):
        register_handler(cls, _ops.ConcatenateOpHandler())
    for cls in keras_api.operation_classes("numpy", ["Split"]):
        register_handler(cls, _ops.SplitOpHandler())



def _register_applications_layers():
    """The custom layers of keras.applications models, through the public registry."""
    scale = keras_api.applications_layer("inception_resnet_v2", "CustomScaleLayer")
    if scale is not None:
        register_handler(scale, _st.ScaledSumHandler())
    layer_scale = keras_api.applications_layer("convnext", "LayerScale")
    if layer_scale is not None:
        register_handler(layer_scale, _cw.LayerScaleHandler())


_register_builtins()
_register_ops()
_register_applications_layers()
