"""Deployment: SavedModel and TFLite export with parity checks, and on-device measurement.

`kslim.export` and `kslim.measure` are the two names most users need; the
rest of this package is reached with `from kslim.deploy import ...`.
"""

from kslim.deploy.comparison import Comparison as Comparison
from kslim.deploy.comparison import compare as compare
from kslim.deploy.exporter import export as export
from kslim.deploy.measurement import measure as measure
from kslim.deploy.measurement import Measurement as Measurement
from kslim.deploy.ops import builtin_ops as builtin_ops
from kslim.deploy.ops import list_ops as list_ops
from kslim.deploy.lowering import fold_selections as fold_selections
from kslim.deploy.exporter import ExportReport as ExportReport
from kslim.deploy.latency import LatencyMeter as LatencyMeter
from kslim.deploy.latency import channel_tile as channel_tile
