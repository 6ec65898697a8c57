"""kslim: network slimming for Keras 3.

Train with a sparsity penalty on every channel's scaling factor, prune the
channels whose factors went to zero, rebuild a narrower Keras model, fine-tune,
and export it for phones.
"""

__version__ = "0.1.0"

from kslim import layers as layers
from kslim import penalties as penalties
from kslim import models as models
from kslim.profile import profile as profile
from kslim.attach import attach as attach
from kslim.attach import detach as detach
from kslim import callbacks as callbacks
from kslim.pruning import Plan as Plan
from kslim.pruning import plan as plan
from kslim.pruning import prune as prune
from kslim.pruning import add_channel_masks as add_channel_masks
from kslim.deploy import export as export
from kslim.deploy import measure as measure
from kslim import data as data
from kslim import recipe as recipe
from kslim.slimming import slim as slim
