"""Small real architectures of every family kslim supports, for tests and benchmarks.

Each builder returns a functional (or Sequential) Keras model with BN momentum
0.9 and readable layer names. They are narrow so that tests stay fast.
"""

import keras

L = keras.layers


def _cbr(x, filters, name, kernel=3, strides=1, act=True):
    x = L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False, name=name + "_conv")(x)
    x = L.BatchNormalization(momentum=0.9, name=name + "_bn")(x)
    return L.ReLU(name=name + "_relu")(x) if act else x


def vgg(input_shape=(16, 16, 3), classes=10):
    x = inp = keras.Input(input_shape)
    for i, f in enumerate([16, 16, "M", 32, 32, "M", 64]):
        x = L.MaxPooling2D(name=f"pool{i}")(x) if f == "M" else _cbr(x, f, f"block{i}")
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(32, name="fc1")(x)
    x = L.BatchNormalization(momentum=0.9, name="fc1_bn")(x)
    x = L.ReLU(name="fc1_relu")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="vgg")


def resnet(input_shape=(16, 16, 3), classes=10):
    """Post-activation ResNet with identity and projection shortcuts."""
    x = inp = keras.Input(input_shape)
    x = _cbr(x, 16, "stem")
    for s, (f, stride) in enumerate([(16, 1), (32, 2)]):
        for b in range(2):
            name = f"s{s}b{b}"
            y = _cbr(x, f, name + "a", strides=stride if b == 0 else 1)
            y = _cbr(y, f, name + "b", act=False)
            if b == 0 and (stride != 1 or x.shape[-1] != f):
                x = _cbr(x, f, name + "_proj", kernel=1, strides=stride, act=False)
            x = L.ReLU(name=name + "_out")(L.Add(name=name + "_add")([x, y]))
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="resnet")


def preact_resnet(input_shape=(16, 16, 3), classes=10, blocks=2, width=1):
    """Pre-activation bottleneck ResNet: BNs on the shared stream need channel selection. Its blocks
    have 8 x `width` and 16 x `width` channels, its stream 4x as many."""
    x = inp = keras.Input(input_shape)
    x = L.Conv2D(16 * width, 3, padding="same", use_bias=False, name="stem")(x)
    for s, (planes, stride) in enumerate([(8 * width, 1), (16 * width, 2)]):
        for b in range(blocks):
            name = f"s{s}b{b}"
            y = L.BatchNormalization(momentum=0.9, name=name + "_bn1")(x)
            y = L.ReLU(name=name + "_relu1")(y)
            shortcut = x
            if b == 0:
                shortcut = L.Conv2D(planes * 4, 1, strides=stride, use_bias=False, name=name + "_down")(x)
            y = L.Conv2D(planes, 1, use_bias=False, name=name + "_conv1")(y)
            y = L.BatchNormalization(momentum=0.9, name=name + "_bn2")(y)
            y = L.ReLU(name=name + "_relu2")(y)
            y = L.Conv2D(planes, 3, strides=stride if b == 0 else 1, padding="same", use_bias=False, name=name + "_conv2")(y)
            y = L.BatchNormalization(momentum=0.9, name=name + "_bn3")(y)
            y = L.ReLU(name=name + "_relu3")(y)
            y = L.Conv2D(planes * 4, 1, use_bias=False, name=name + "_conv3")(y)
            x = L.Add(name=name + "_add")([shortcut, y])
    x = L.BatchNormalization(momentum=0.9, name="final_bn")(x)
    x = L.ReLU(name="final_relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="preact_resnet")


def one_reader(width=32, dead=range(8, 24), beta=0.0, input_shape=(16, 16, 3), classes=3):
    """The smallest shared stream: a `width`-channel stem read by the output (through pooling) and,
    through BN and ReLU, by a 3x3 convolution to 32 channels ("mid"). The BN ("mid_bn") has gamma 1
    except at the `dead` channels, which have gamma 0 and the given `beta`: after the ReLU they are
    the constant max(beta, 0). Pruned, "mid" reads a selection of the stream."""
    inp = keras.Input(input_shape)
    stream = L.Conv2D(width, 3, padding="same", name="stem")(inp)
    y = L.ReLU(name="mid_relu")(L.BatchNormalization(momentum=0.9, name="mid_bn")(stream))
    y = L.Conv2D(32, 3, padding="same", name="mid")(y)
    heads = [L.GlobalAveragePooling2D(name=f"{n}_gap")(t) for n, t in (("mid", y), ("stem", stream))]
    model = keras.Model(inp, L.Dense(classes, name="logits")(L.Concatenate(name="cat")(heads)), name="one_reader")
    bn = model.get_layer("mid_bn")
    gamma, b, mean, var = bn.get_weights()
    dead = list(dead)
    gamma[:], b[:] = 1.0, 0.0
    gamma[dead], b[dead] = 0.0, beta
    bn.set_weights([gamma, b, mean, var])
    return model


def densenet(input_shape=(16, 16, 3), classes=10, growth=6, layers=3):
    x = inp = keras.Input(input_shape)
    x = L.Conv2D(12, 3, padding="same", use_bias=False, name="stem")(x)
    for blk in range(2):
        for i in range(layers):
            name = f"d{blk}l{i}"
            y = L.BatchNormalization(momentum=0.9, name=name + "_bn")(x)
            y = L.ReLU(name=name + "_relu")(y)
            y = L.Conv2D(growth, 3, padding="same", use_bias=False, name=name + "_conv")(y)
            x = L.Concatenate(name=name + "_cat")([x, y])
        if blk == 0:
            x = L.BatchNormalization(momentum=0.9, name="trans_bn")(x)
            x = L.ReLU(name="trans_relu")(x)
            x = L.Conv2D(x.shape[-1], 1, use_bias=False, name="trans_conv")(x)
            x = L.AveragePooling2D(2, name="trans_pool")(x)
    x = L.BatchNormalization(momentum=0.9, name="final_bn")(x)
    x = L.ReLU(name="final_relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="densenet")


def mobilenet(input_shape=(16, 16, 3), classes=10):
    """Depthwise-separable blocks (MobileNet v1 style) plus one SeparableConv2D."""
    x = inp = keras.Input(input_shape)
    x = _cbr(x, 16, "stem", strides=1)
    for i, (f, stride) in enumerate([(32, 1), (32, 2), (64, 1)]):
        x = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"dw{i}_bn")(x)
        x = L.ReLU(6.0, name=f"dw{i}_relu")(x)
        x = _cbr(x, f, f"pw{i}", kernel=1)
    x = L.SeparableConv2D(48, 3, padding="same", use_bias=False, name="sep")(x)
    x = L.BatchNormalization(momentum=0.9, name="sep_bn")(x)
    x = L.ReLU(name="sep_relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="mobilenet")


def se_net(input_shape=(16, 16, 3), classes=10):
    """Squeeze-and-excitation: a broadcasting Multiply ties the excitation to the block's channels."""
    x = inp = keras.Input(input_shape)
    x = _cbr(x, 16, "stem")
    for i in range(2):
        y = _cbr(x, 32, f"b{i}")
        s = L.GlobalAveragePooling2D(name=f"b{i}_squeeze")(y)
        s = L.Dense(8, activation="relu", name=f"b{i}_fc1")(s)
        s = L.Dense(32, activation="sigmoid", name=f"b{i}_fc2")(s)
        s = L.Reshape((1, 1, 32), name=f"b{i}_reshape")(s)
        x = L.Multiply(name=f"b{i}_scale")([y, s])
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="se_net")


def ops_net(input_shape=(16, 16, 3), classes=10):
    """keras.ops calls instead of layers: hard-swish and an SE gate as arithmetic (as MobileNetV3 writes
    them), a residual `x + y`, and `ops.split` / `ops.concatenate` on the channel axis (as CSPNet)."""
    ops = keras.ops

    def hard_sigmoid(x):
        return L.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)

    x = inp = keras.Input(input_shape)
    x = _cbr(x, 16, "stem", act=False)
    x = x * hard_sigmoid(x)  # hard-swish
    y = _cbr(x, 16, "res", act=False)
    x = ops.relu(x + y)
    s = L.GlobalAveragePooling2D(keepdims=True, name="se_squeeze")(x)
    s = L.Conv2D(8, 1, activation="relu", name="se_reduce")(s)
    s = L.Conv2D(16, 1, name="se_expand")(s)
    x = x * hard_sigmoid(s)
    x = _cbr(x, 32, "wide")
    a, b = ops.split(x, 2, axis=-1)
    a = _cbr(a, 16, "part", act=False)
    a = ops.relu6(a) * ops.sigmoid(a) - ops.maximum(a, 0.0) / 2.0
    x = ops.concatenate([a, b], axis=-1)
    x = _cbr(x, 24, "head")
    x = L.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="ops_net")


def mlp(input_shape=(28, 28, 1), classes=10):
    x = inp = keras.Input(input_shape)
    x = L.Flatten(name="flatten")(x)
    for i, units in enumerate([64, 32]):
        x = L.Dense(units, name=f"fc{i}")(x)
        x = L.BatchNormalization(momentum=0.9, name=f"fc{i}_bn")(x)
        x = L.ReLU(name=f"fc{i}_relu")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="mlp")


def sequential(input_shape=(16, 16, 3), classes=10):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            L.Conv2D(16, 3, padding="same", name="conv1"),
            L.BatchNormalization(momentum=0.9, name="bn1"),
            L.Activation("relu", name="act1"),
            L.MaxPooling2D(name="pool1"),
            L.Conv2D(32, 3, padding="same", name="conv2"),
            L.BatchNormalization(momentum=0.9, name="bn2"),
            L.Activation("relu", name="act2"),
            L.GlobalAveragePooling2D(name="gap"),
            L.Dense(classes, name="logits"),
        ],
        name="sequential_cnn",
    )


def layer_zoo(input_shape=(12, 12, 3), classes=10):
    """One of every per-channel, merge and producer layer kslim handles, in 2-D."""
    x = inp = keras.Input(input_shape)
    x = L.Rescaling(1.0 / 2.0, offset=0.1, name="rescale")(x)
    a = L.Conv2D(12, 3, padding="same", name="conv_a")(x)
    a = L.BatchNormalization(momentum=0.9, name="bn_a")(a)
    a = L.PReLU(shared_axes=[1, 2], name="prelu")(a)
    a = L.Normalization(mean=[0.1] * 12, variance=[2.0] * 12, name="norm")(a)
    a = L.ZeroPadding2D(1, name="pad")(a)
    a = L.Cropping2D(1, name="crop")(a)
    a = L.MaxPooling2D(name="pool")(a)
    a = L.UpSampling2D(name="up")(a)
    b = L.Conv2DTranspose(12, 3, padding="same", name="convT")(x)
    b = L.BatchNormalization(momentum=0.9, name="bn_b")(b)
    b = L.Activation("elu", name="elu")(b)
    c = L.Conv2D(12, 1, name="conv_c")(x)
    c = L.BatchNormalization(momentum=0.9, name="bn_c")(c)
    d = L.Conv2D(12, 1, name="conv_d")(x)
    d = L.BatchNormalization(momentum=0.9, name="bn_d")(d)
    m = L.Subtract(name="sub")([a, b])
    m = L.Average(name="avg")([m, c])
    m = L.Maximum(name="max")([m, d])
    m = L.Minimum(name="min")([m, L.LeakyReLU(name="leaky")(d)])
    m = L.Dense(10, name="dense4d")(m)  # Dense on a 4-D tensor
    m = L.BatchNormalization(momentum=0.9, name="bn_dense")(m)
    m = L.Dropout(0.2, name="drop")(L.ReLU(name="relu")(m))
    m = L.Reshape((12 * 12, 10), name="reshape")(m)
    m = L.Conv1D(8, 3, padding="same", name="conv1d")(m)
    m = L.BatchNormalization(momentum=0.9, name="bn_1d")(m)
    m = L.GlobalMaxPooling1D(name="gmp")(m)
    return keras.Model(inp, L.Dense(classes, name="logits")(m), name="layer_zoo")


def conv3d(input_shape=(6, 6, 6, 2), classes=4):
    x = inp = keras.Input(input_shape)
    x = L.Conv3D(8, 3, padding="same", name="c1")(x)
    x = L.BatchNormalization(momentum=0.9, name="b1")(x)
    x = L.ReLU(name="r1")(x)
    x = L.Conv3D(8, 3, padding="same", name="c2")(x)
    x = L.BatchNormalization(momentum=0.9, name="b2")(x)
    x = L.GlobalAveragePooling3D(name="gap")(x)
    return keras.Model(inp, L.Dense(classes, name="logits")(x), name="conv3d")


def keras_resnet50():
    return keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)


def keras_mobilenetv2():
    return keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10, alpha=0.35)


def keras_densenet121():
    return keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10)


def keras_mobilenetv3small():
    return keras.applications.MobileNetV3Small(weights=None, input_shape=(32, 32, 3), classes=10, alpha=0.75)


CUSTOM = {
    "vgg": vgg,
    "resnet": resnet,
    "preact_resnet": preact_resnet,
    "densenet": densenet,
    "mobilenet": mobilenet,
    "se_net": se_net,
    "ops_net": ops_net,
    "mlp": mlp,
    "sequential": sequential,
    "layer_zoo": layer_zoo,
    "conv3d": conv3d,
}
APPLICATIONS = {
    "keras_resnet50": keras_resnet50,
    "keras_mobilenetv2": keras_mobilenetv2,
    "keras_densenet121": keras_densenet121,
    "keras_mobilenetv3small": keras_mobilenetv3small,
}
ALL = {**CUSTOM, **APPLICATIONS}


# KerasHub backbones and a task, built from their constructors (presets download: never here). Small
# configurations of each family's real blocks; keras-hub is an optional extra.


def _hub():
    import keras_hub

    return keras_hub.models


def hub_resnet():
    return _hub().ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="bottleneck_block",
        image_shape=(32, 32, 3))


def hub_resnet_v2():
    return _hub().ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 32],
        stackwise_num_blocks=[2, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=True, image_shape=(32, 32, 3))


def hub_densenet():
    return _hub().DenseNetBackbone(stackwise_num_repeats=[2, 2], image_shape=(32, 32, 3))


def hub_cspnet():
    return _hub().CSPNetBackbone(
        stem_filters=32, stem_kernel_size=3, stem_strides=1, stackwise_depth=[1, 1],
        stackwise_strides=[1, 2], stackwise_num_filters=[32, 64], block_type="bottleneck_block",
        stage_type="csp", expand_ratio=[2.0] * 2, bottle_ratio=[0.5] * 2, block_ratio=[1.0] * 2, image_shape=(32, 32, 3))


def hub_xception():
    return _hub().XceptionBackbone(
        stackwise_conv_filters=[[16, 32], [32, 64], [64, 64]], stackwise_pooling=[True, True, False],
        image_shape=(64, 64, 3))


def hub_efficientnet():
    return _hub().EfficientNetBackbone(
        stackwise_kernel_sizes=[3, 3, 3], stackwise_num_repeats=[1, 2, 2],
        stackwise_input_filters=[16, 16, 24], stackwise_output_filters=[16, 24, 32],
        stackwise_expansion_ratios=[1, 4, 4], stackwise_squeeze_and_excite_ratios=[0.0, 0.0, 0.25],
        stackwise_strides=[1, 2, 2], stackwise_block_types=["fused", "fused", "unfused"],
        stackwise_width_coefficients=[1.0] * 3, stackwise_depth_coefficients=[1.0] * 3,
        stackwise_force_input_filters=[0] * 3, stackwise_nores_option=[False] * 3,
        input_shape=(32, 32, 3), num_features=128)


def hub_mobilenet():
    return _hub().MobileNetBackbone(
        stackwise_expansion=[[40, 56], [64, 144]], stackwise_num_blocks=[2, 2],
        stackwise_num_filters=[[16, 16], [24, 24]], stackwise_kernel_size=[[3, 3], [5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1]], stackwise_se_ratio=[[None, None], [0.25, 0.25]],
        stackwise_activation=[["relu", "relu"], ["hard_swish", "hard_swish"]],
        output_num_filters=96, input_activation="hard_swish", output_activation="hard_swish",
        input_num_filters=16, image_shape=(32, 32, 3), depthwise_filters=16, squeeze_and_excite=0.5,
        stackwise_padding=[[1, 1], [2, 2]], depthwise_stride=1, depthwise_residual=True, last_layer_filter=96)


def hub_resnet_classifier():
    return _hub().ResNetImageClassifier(backbone=hub_resnet(), num_classes=10)


def hub_vit():
    return _hub().ViTBackbone(image_shape=(32, 32, 3), patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                              mlp_dim=64)


def hub_mit():
    return _hub().MiTBackbone(
        layerwise_depths=[1, 1], num_layers=2, layerwise_num_heads=[1, 2], layerwise_sr_ratios=[2, 1],
        max_drop_path_rate=0.0, layerwise_patch_sizes=[7, 3], layerwise_strides=[4, 2], hidden_dims=[16, 32],
        image_shape=(32, 32, 3))


def hub_deeplab(size=None):
    """KerasHub's DeepLabV3 segmenter over `hub_resnet`, for any input size, or called on a `size` x `size`
    input (a model of fixed size, which `kslim.profile` can count)."""
    hub = _hub()
    backbone = hub.DeepLabV3Backbone(image_encoder=hub_resnet(), low_level_feature_key="P2",
                                     spatial_pyramid_pooling_key="P3", dilation_rates=[2, 4], upsampling_size=2,
                                     projection_filters=16)
    segmenter = hub.DeepLabV3ImageSegmenter(backbone=backbone, num_classes=3)
    if size is None:
        return segmenter
    x = keras.Input((size, size, 3), name="image")
    return keras.Model(x, segmenter(x), name="deeplab")


def hub_segformer():
    hub = _hub()
    return hub.SegFormerImageSegmenter(backbone=hub.SegFormerBackbone(image_encoder=hub_mit(), projection_filters=16),
                                       num_classes=3)


# Transformer and segmentation tasks: kslim prunes them exactly or refuses them with its own ValueError.
HUB_TASKS = {"hub_vit": hub_vit, "hub_mit": hub_mit, "hub_deeplab": lambda: hub_deeplab(32),
             "hub_segformer": hub_segformer}


def unet(input_shape=(16, 16, 3), classes=3):
    """A small U-Net-style encoder-decoder: two strided convolutions down, two Conv2DTranspose up, a skip
    concatenation at each scale (a decoder whose transposed convolutions read pruned constant channels)."""
    x = inp = keras.Input(input_shape)
    e1 = _cbr(x, 16, "enc1")
    e2 = _cbr(e1, 32, "enc2", strides=2)
    b = _cbr(e2, 32, "bottom", strides=2)
    u2 = L.Conv2DTranspose(32, 4, strides=2, padding="same", name="up2")(b)
    u2 = L.ReLU(name="up2_relu")(L.BatchNormalization(momentum=0.9, name="up2_bn")(u2))
    d2 = _cbr(L.Concatenate(name="skip2")([u2, e2]), 32, "dec2")
    u1 = L.Conv2DTranspose(16, 3, strides=2, padding="same", name="up1")(d2)
    u1 = L.ReLU(name="up1_relu")(L.BatchNormalization(momentum=0.9, name="up1_bn")(u1))
    d1 = _cbr(L.Concatenate(name="skip1")([u1, e1]), 16, "dec1")
    return keras.Model(inp, L.Conv2D(classes, 1, name="head")(d1), name="unet")


HUB = {
    "hub_resnet": hub_resnet,
    "hub_resnet_v2": hub_resnet_v2,
    "hub_densenet": hub_densenet,
    "hub_cspnet": hub_cspnet,
    "hub_xception": hub_xception,
    "hub_efficientnet": hub_efficientnet,
    "hub_mobilenet": hub_mobilenet,
    "hub_resnet_classifier": hub_resnet_classifier,
}
