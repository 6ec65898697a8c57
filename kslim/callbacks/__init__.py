"""kslim's Keras callbacks."""

from kslim.callbacks.proximal_step import ProximalStep as ProximalStep
from kslim.callbacks.sparsity_monitor import SparsityMonitor as SparsityMonitor
