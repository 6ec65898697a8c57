"""kslim's Keras layers."""

from kslim.layers.channel_mask import ChannelMask as ChannelMask
from kslim.layers.channel_select import ChannelSelect as ChannelSelect
from kslim.layers.border_bias import BorderBias as BorderBias
