"""The model zoo: the papers' architectures as builder functions, and their registry.

Every builder returns a functional `keras.Model` with deterministic, readable
layer names (`block3_conv2`, `stage2_block4_bn1`) that outputs logits (no
softmax: compile with `from_logits=True`). Every builder takes `widths`, the
channel count of each channel-producing layer in a documented order, so a
slimmed model is the same builder with smaller widths.

Example:

>>> kslim.models.list_models()
['densenet40', 'lenet5', 'lenet5_caffe', 'mlp', 'preresnet164', 'resnet32', 'vgg11', ...]
>>> model = kslim.models.get("vgg19", num_classes=100, gamma_init=0.5)
"""

from kslim.models.registry import builder as builder  # noqa: E402
from kslim.models.registry import get as get  # noqa: E402
from kslim.models.registry import list_models as list_models  # noqa: E402
from kslim.models.registry import register as register  # noqa: E402
from kslim.models.densenet_models import densenet as densenet  # noqa: E402
from kslim.models.densenet_models import densenet40 as densenet40  # noqa: E402
from kslim.models.lenet import lenet5 as lenet5  # noqa: E402
from kslim.models.lenet import lenet5_caffe as lenet5_caffe  # noqa: E402
from kslim.models.mlp_models import mlp as mlp  # noqa: E402
from kslim.models.preresnet_models import preresnet as preresnet  # noqa: E402
from kslim.models.preresnet_models import preresnet164 as preresnet164  # noqa: E402
from kslim.models.resnet_models import resnet as resnet  # noqa: E402
from kslim.models.resnet_models import resnet32 as resnet32  # noqa: E402
from kslim.models.vgg_models import vgg as vgg  # noqa: E402
from kslim.models.vgg_models import vgg11 as vgg11  # noqa: E402
from kslim.models.vgg_models import vgg13 as vgg13  # noqa: E402
from kslim.models.vgg_models import vgg16 as vgg16  # noqa: E402
from kslim.models.vgg_models import vgg19 as vgg19  # noqa: E402
