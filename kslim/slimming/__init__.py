"""Multi-pass slimming: sparsity training -> prune -> fine-tune, checkpointed in a run folder."""

from kslim.slimming.loop import SlimResult as SlimResult
from kslim.slimming.loop import slim as slim

__all__ = ["slim", "SlimResult"]
