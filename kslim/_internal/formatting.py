"""One number formatter for every table and summary line kslim prints."""


def human(n):
    """A count with K/M/G and two decimals: 548210 -> '548.21K', 796272640 -> '796.27M'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def human_bytes(n):
    """Binary units: 12288 -> '12.00 KiB'."""
    n = float(n)
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024.0
        if n < 1023.95 or unit == "TiB":
            return f"{n:.2f} {unit}"


def first_line(error):
    """The first line of an exception's message, or its class name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def fewer(before, after):
    """'86.3% fewer' (or 'n/a' for a zero `before`)."""
    return f"{100.0 * (1 - after / before):.1f}% fewer" if before else "n/a"
