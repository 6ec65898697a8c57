"""kslim: network slimming for Keras 3.

Train with a sparsity penalty on every channel's scaling factor, prune the
channels whose factors went to zero, rebuild a narrower Keras model, fine-tune,
and export it for phones.
"""

__version__ = "0.1.0"

from kslim import layers as layers
from kslim import penalties as penalties
