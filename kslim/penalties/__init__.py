"""Sparsity penalties on channel scaling factors, as Keras regularizers.

`get(penalty, lam, **args)` turns a name or an instance into a penalty.
"""

from kslim.penalties.base import Penalty as Penalty
from kslim.penalties.l1 import L1 as L1

_BY_NAME = {
    "l1": L1,
}


def get(penalty="l1", lam=1e-4, **penalty_args):
    """Returns a penalty instance from a name or an instance.

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
