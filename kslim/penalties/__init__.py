"""Sparsity penalties on channel scaling factors, as Keras regularizers.

`get(penalty, lam, **args)` turns a name or an instance into a penalty.
"""

from kslim.penalties.base import Penalty as Penalty
from kslim.penalties.l1 import L1 as L1
from kslim.penalties.lp import Lp as Lp
from kslim.penalties.mcp import MCP as MCP
from kslim.penalties.scad import SCAD as SCAD
from kslim.penalties.smooth_l1 import SmoothL1 as SmoothL1
from kslim.penalties.tl1 import TL1 as TL1

_BY_NAME = {
    "l1": L1,
    "smooth_l1": SmoothL1,
    "lp": Lp,
    "tl1": TL1,
    "mcp": MCP,
    "scad": SCAD,
}


def get(penalty="l1", lam=1e-4, **penalty_args):
    """Returns a penalty instance from a name or an instance.

    The names and their parameters, with defaults (shape parameters are in
    units of the scaling factor `|gamma|`; `lam` is the slope at 0 except
    where noted):

    - `"l1"`: `L1(lam)`, network slimming's penalty.
    - `"smooth_l1"`: `SmoothL1(lam, delta=1e-2)`, L1 made quadratic below
      `delta` (slope `lam` beyond `delta`).
    - `"lp"`: `Lp(lam, p=0.5)`, `|x|**p`, 0 < p < 1 (infinite slope at 0).
    - `"tl1"`: `TL1(lam, a=1.0)`, transformed L1 (slope `lam (a + 1) / a`).
    - `"mcp"`: `MCP(lam, a=1.0)`, minimax concave, flat beyond `a`.
    - `"scad"`: `SCAD(lam, a=3.7, knee=0.1)`, L1 up to `knee`, flat beyond
      `a * knee`.

    Args:
        penalty: a `kslim.penalties.Penalty` instance, or one of the names in
            `names()`.
        lam: float, the penalty weight; used only with a name.
        **penalty_args: the penalty's own parameters (`p`, `a`, ...); used
            only with a name.

    Returns:
        A `kslim.penalties.Penalty`.

    Raises:
        ValueError: for an unknown name, or arguments given with an instance.

    Example:

    >>> kslim.penalties.get("lp", lam=1e-4, p=0.75)
    Lp(lam=0.0001, p=0.75)
    """
    if isinstance(penalty, Penalty):
        if penalty_args:
            raise ValueError(
                f"Got penalty={penalty!r} and extra arguments {sorted(penalty_args)}; "
                "set the parameters on the instance, or pass the penalty by name."
            )
        return penalty
    if isinstance(penalty, str) and penalty.lower() in _BY_NAME:
        return _BY_NAME[penalty.lower()](lam=lam, **penalty_args)
    raise ValueError(
        f"Unknown penalty {penalty!r}; use one of {names()} or a kslim.penalties.Penalty instance."
    )


def names():
    """The penalty names that `get` and `kslim.attach(penalty=...)` accept."""
    return sorted(_BY_NAME)
