"""One way to check a user's numbers: the messages name the parameter, the value and the range."""

import math
import numbers


def _prefix(where):
    return f"{where}: " if where else ""


def check_int(name, value, low=1, where=None, allow_none=False):
    """Returns `value` as an int >= `low`; a clear TypeError/ValueError otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(where)}{name} must be an integer >= {low}, got {value!r}.")
    if value < low:
        raise ValueError(f"{_prefix(where)}{name}={value!r} must be an integer >= {low}.")
    return int(value)


def check_number(name, value, low=None, high=None, low_open=False, high_open=False, where=None,
                 hint="", allow_none=False):
    """Returns `value` as a float within the given range; a clear TypeError/ValueError otherwise.

    Args:
        name: the parameter's name, as the user wrote it.
        value: what the user gave.
        low, high: the bounds (None: unbounded).
        low_open, high_open: whether a bound itself is excluded.
        where: the function's name, to start the message, or None.
        hint: what the parameter means, appended to the message.
        allow_none: whether None passes (and is returned).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{_prefix(where)}{name} must be a number, got {type(value).__name__} {value!r}"
            + (f" ({hint})" if hint else "") + "."
        )
    value = float(value)
    ok = not math.isnan(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(
            f"{_prefix(where)}{name}={value!r} must be {_range(low, high, low_open, high_open)}"
            + (f": {hint}" if hint else "") + "."
        )
    return value


def _range(low, high, low_open, high_open):
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "a finite number"
