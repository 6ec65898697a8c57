"""kslim: network slimming for Keras 3.

Train with a sparsity penalty on every channel's scaling factor, prune the
channels whose factors went to zero, rebuild a narrower Keras model, fine-tune,
and export it for phones.

The package follows that pipeline:

    sparsity/   attach / detach a penalty on every scaling factor; find the factors
    penalties/  the penalties (L1, Lp, TL1, MCP, SCAD) as Keras regularizers
    callbacks/  SparsityMonitor and ProximalStep
    pruning/    graph analysis, layer handlers, budgets, plans, surgery
    training/   the papers' SGD schedule (Recipe) and CoupledSGD
    slimming/   the multi-pass loop with its run folder and plots
    deploy/     SavedModel / TFLite export, parity checks, LiteRT measurements
    models/     the papers' architectures and their registry
    data/       datasets from disk with the papers' augmentation
    cli/        what the bin/kslim-* commands do
"""

__version__ = "0.1.0"

import os as _os

if _os.environ.get("KSLIM_QUIET_TF") == "1":  # set by the bin/kslim-* commands, before TensorFlow loads
    from kslim._internal import startup as _startup

    _startup.filter_stderr()
    del _startup
del _os

from kslim import callbacks as callbacks
from kslim import data as data
from kslim import layers as layers
from kslim import models as models
from kslim import penalties as penalties
from kslim import pruning as pruning
from kslim import sparsity as sparsity
from kslim import training as training
from kslim.deploy import export as export
from kslim.deploy import measure as measure
from kslim.profiling import Profile as Profile
from kslim.profiling import profile as profile
from kslim.pruning import Budget as Budget
from kslim.pruning import Plan as Plan
from kslim.pruning import add_channel_masks as add_channel_masks
from kslim.pruning import plan as plan
from kslim.pruning import prune as prune
from kslim.slimming import SlimResult as SlimResult
from kslim.slimming import slim as slim
from kslim.sparsity import attach as attach
from kslim.sparsity import detach as detach
from kslim.sparsity import scaling_factors as scaling_factors
from kslim.training import recipe as recipe

__all__ = [
    "__version__",
    "attach", "detach", "scaling_factors",
    "plan", "prune", "Plan", "Budget", "add_channel_masks",
    "profile", "Profile",
    "slim", "SlimResult",
    "export", "measure",
    "callbacks", "data", "layers", "models", "penalties", "pruning", "sparsity", "training",
    "recipe",
]
