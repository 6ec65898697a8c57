"""Channel pruning: the channel graph, layer handlers, budgets, plans and surgery.

`kslim.prune(model, ratio=0.6)` is the one call most users need. To prune
through a custom layer, give kslim a handler for it:

>>> class MyScaleHandler(kslim.pruning.LayerHandler):
...     def classify(self, layer, rank):
...         return "per_channel", None
>>> kslim.pruning.register_handler(MyScale, MyScaleHandler())
"""

from kslim.pruning.budget import Budget as Budget
from kslim.pruning.budget import ratio_cut as ratio_cut
from kslim.pruning.channel_masks import add_channel_masks as add_channel_masks
from kslim.pruning.handlers import LayerHandler as LayerHandler
from kslim.pruning.handlers import get_handler as get_handler
from kslim.pruning.handlers import register_handler as register_handler
from kslim.pruning.planner import Plan as Plan
from kslim.pruning.planner import plan as plan
from kslim.pruning.pruner import prune as prune

__all__ = [
    "prune", "plan", "Plan", "Budget", "ratio_cut", "add_channel_masks",
    "LayerHandler", "register_handler", "get_handler",
]
