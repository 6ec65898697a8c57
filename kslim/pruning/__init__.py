"""Channel pruning: graph analysis, plans, and surgery."""

from kslim.pruning.plan import Plan as Plan
from kslim.pruning.plan import plan as plan
from kslim.pruning.prune import prune as prune
from kslim.pruning.channel_masks import add_channel_masks as add_channel_masks
from kslim.pruning.prune_file import prune_file as prune_file
