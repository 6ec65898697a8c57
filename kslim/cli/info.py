"""`info_file`: what a saved model costs and what pruning it would remove; what `bin/kslim-info` runs."""

import numpy as np

from kslim._internal import files as _files
from kslim._internal.checks import check_int
from kslim.pruning.budget import Budget


def info_file(model_path, ratio=0.5, bins=10, max_layer_ratio=None, print_fn=print):
    """Describes a `.keras` model: params and FLOPs per layer, its scaling factors, and a pruning plan.

    Use it to choose a pruning ratio after sparsity training: the histogram
    shows how many channels have gone to zero, and the plan shows, per layer,
    how many channels `kslim.prune(model, ratio=ratio)` would keep and what
    the model would cost then. Nothing is written.

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, figure 4 and section 3.3.

    Args:
        model_path: str, the `.keras` file (loaded with safe mode on).
        ratio: float in [0, 1), the pruning ratio of the plan shown.
        bins: int >= 1, the histogram's number of bins over [0, max |gamma|].
        max_layer_ratio: optional float in (0, 1], as in `kslim.plan`.
        print_fn: callable for the text, or None to only return it.

    Returns:
        The report, a str.

    Raises:
        FileNotFoundError: if there is no file at `model_path`.
        ValueError: for a file that is not a Keras model, or a bad `ratio`
            or `bins`.

    Example:

    >>> text = info_file("sparse.keras", ratio=0.7)
    """
    check_int("bins", bins)
    budget = Budget(ratio=ratio, max_layer_ratio=max_layer_ratio)  # checks both before loading
    model = _files.load_model(model_path)

    from keras import ops

    from kslim.sparsity.factors import scaling_factors
    from kslim.profiling import profile
    from kslim.pruning.planner import plan

    sections = [str(profile(model))]
    factors = scaling_factors(model)
    if factors:
        values = np.concatenate([np.abs(np.ravel(ops.convert_to_numpy(v.value))) for _, v in factors])
        title = f"|gamma| of {values.size} channels in {len(factors)} layers"
        sections.append(histogram(values, bins, title))
        sections.append(f"Pruning plan at ratio={budget.ratio:g}:\n" + plan(
            model, budget=budget
        ).summary(print_fn=False))
    else:
        sections.append(
            "No channel scaling factors (BatchNormalization scale or ChannelMask): nothing to "
            "prune. Add BN after the convolutions, or kslim.add_channel_masks(model)."
        )
    text = "\n\n".join(sections)
    if print_fn is not None:
        print_fn(text)
    return text


def histogram(values, bins=10, title="values", width=40):
    """A text histogram: one line per bin with its range, count and a bar of `#`.

    Example:

    >>> print(histogram(np.array([0.0, 0.0, 0.5]), bins=2))
    """
    values = np.asarray(values, dtype=np.float64)
    high = float(values.max()) if values.size else 0.0
    counts, edges = np.histogram(values, bins=bins, range=(0.0, high if high > 0 else 1.0))
    most = max(int(counts.max()), 1) if counts.size else 1
    lines = [f"{title}: {bins} bins"]
    for count, low, up in zip(counts, edges[:-1], edges[1:]):
        bar = "#" * int(round(width * count / most))
        lines.append(f"  [{low:8.4f}, {up:8.4f}{']' if up == edges[-1] else ')'}  {count:7d}  {bar}".rstrip())
    zeros = int(np.sum(values < 1e-2))
    lines.append(f"  {zeros} of {values.size} ({100.0 * zeros / max(values.size, 1):.1f}%) below 0.01")
    return "\n".join(lines)
