"""Plots of a slimming run: scaling factors, channels per layer, accuracy against cost.

PNG files drawn with matplotlib's object-oriented API (no pyplot, no display,
and the user's matplotlib backend is left alone).
matplotlib is the `kslim[plots]` extra and is imported only when a plot is
drawn. `plot_run` draws every plot of a `kslim.slim` run folder from the files
in it, so the plots of a finished or interrupted run can be redrawn at any
time.
"""

import json
import os

import numpy as np

from kslim.slimming import run_dir as _run_dir

# Layers that only carry their producer's channels; the bar chart shows the producers.
_FOLLOWERS = ("BatchNormalization", "ChannelMask", "ChannelSelect")
_COLORS = {"initial": "0.5", "sparse": "tab:blue", "pruned": "tab:orange", "finetuned": "tab:green"}


def check_matplotlib():
    """Raises a clear ImportError if matplotlib is not installed.

    Raises:
        ImportError: naming the fix (`pip install 'kslim[plots]'`).
    """
    _figure_class()


def plot_run(run_dir):
    """Draws every plot of a `kslim.slim` run folder into it, from its files.

    Writes, where the data is there:

    - `pass{k}/gammas.png`: the distribution of the scaling factors before
      and after sparsity training of pass k (as figure 4 of Liu et al.).
    - `pass{k}/channels.png`: channels per layer before and after pruning.
    - `accuracy.png`: test accuracy against params and against FLOPs after
      every phase (only when the run had test data).

    Reference: Liu et al., "Learning Efficient Convolutional Networks through
    Network Slimming", ICCV 2017, figure 4.

    Args:
        run_dir: str, the folder of a `kslim.slim` run.

    Returns:
        List of the paths written.

    Raises:
        FileNotFoundError: if `run_dir` has no `metrics.json`.
        ImportError: if matplotlib is not installed.

    Example:

    >>> kslim.plots.plot_run("runs/slim-mlp-mnist")
    ['runs/slim-mlp-mnist/pass1/gammas.png', ...]
    """
    run_dir = os.fspath(run_dir)
    records = _run_dir.read_metrics(run_dir)
    written = []
    for k in sorted({r["pass"] for r in records if r["pass"] > 0}):
        folder = os.path.join(run_dir, f"pass{k}")
        gammas = os.path.join(folder, "gammas.npz")
        if os.path.isfile(gammas):
            with np.load(gammas) as data:
                before, after = data["before"], data["after"]
            path = os.path.join(folder, "gammas.png")
            plot_gammas(before, after, path, title=f"Pass {k}: scaling factors")
            written.append(path)
        plan_file = os.path.join(folder, "plan.json")
        if os.path.isfile(plan_file):
            with open(plan_file) as f:
                layers = json.load(f)["layers"]
            path = os.path.join(folder, "channels.png")
            plot_channels(layers, path, title=f"Pass {k}: channels per layer")
            written.append(path)
    if any(r.get("accuracy") is not None for r in records):
        path = os.path.join(run_dir, "accuracy.png")
        plot_tradeoff(records, path)
        written.append(path)
    return written


def plot_gammas(before, after, path, title="Scaling factors", bins=50):
    """Histogram of the scaling factors before and after sparsity training.

    Args:
        before, after: 1-D arrays of scaling factors (BN gamma, mask values).
        path: str, the PNG file to write.
        title: str, the figure title.
        bins: int, the number of bins (shared by both histograms).
    """
    before, after = np.ravel(before), np.ravel(after)
    low = min(before.min(initial=0.0), after.min(initial=0.0))
    high = max(before.max(initial=0.0), after.max(initial=0.0))
    edges = np.linspace(low, high if high > low else low + 1.0, bins + 1)
    fig = _figure_class()(figsize=(7, 4))
    ax = fig.subplots()
    ax.hist(before, bins=edges, color="0.6", alpha=0.7, label=f"before ({before.size} channels)")
    ax.hist(after, bins=edges, color="tab:blue", alpha=0.7, label="after sparsity training")
    ax.set_xlabel("scaling factor value (BN gamma)")
    ax.set_ylabel("count")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


def plot_channels(layers, path, title="Channels per layer"):
    """Bar chart of each layer's output channels before and after pruning.

    Args:
        layers: the `layers` dict of a `kslim.Plan` (or of its JSON): name ->
            record with `class` and `channels` ([before, after]).
        path: str, the PNG file to write.
        title: str, the figure title.
    """
    rows = [(name, rec["channels"]) for name, rec in layers.items() if rec["class"] not in _FOLLOWERS]
    names = [name for name, _ in rows]
    before = np.array([c[0] for _, c in rows])
    after = np.array([c[1] for _, c in rows])
    x = np.arange(len(rows))
    fig = _figure_class()(figsize=(max(6, 0.45 * len(rows) + 2), 4.5))
    ax = fig.subplots()
    ax.bar(x, before, color="0.75", label="before")
    bars = ax.bar(x, after, color="tab:orange", label="after")
    ax.bar_label(bars, labels=[f"{a}/{b}" for a, b in zip(after, before)], fontsize=8, padding=2)
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=60 if len(rows) > 4 else 0, ha="right" if len(rows) > 4 else "center")
    ax.set_ylabel("channels")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


def plot_tradeoff(records, path):
    """Test accuracy against params and against FLOPs, one point per phase of a run.

    The starting model's point is left out when it is far less accurate than
    the trained ones (an untrained model), so that the axis shows the
    differences that matter.

    Args:
        records: list of phase records (`metrics.json`'s `records`).
        path: str, the PNG file to write.
    """
    points = [r for r in records if r.get("accuracy") is not None]
    trained = [r["accuracy"] for r in points if r["phase"] != "initial"]
    if trained:
        # An untrained starting model (10% on digits) would squash the interesting range.
        points = [r for r in points if r["phase"] != "initial" or r["accuracy"] >= min(trained) - 0.1]
    fig = _figure_class()(figsize=(11, 4.2))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, label in ((axes[0], "params", "parameters"), (axes[1], "flops", "FLOPs")):
        ax.plot([r[key] for r in points], [100 * r["accuracy"] for r in points], color="0.8", zorder=1)
        for phase, color in _COLORS.items():
            chosen = [r for r in points if r["phase"] == phase]
            if chosen:
                ax.scatter(
                    [r[key] for r in chosen], [100 * r["accuracy"] for r in chosen],
                    color=color, label=phase, zorder=2,
                )
        for r in points:
            if r["phase"] == "finetuned":
                ax.annotate(f"pass {r['pass']}", (r[key], 100 * r["accuracy"]),
                            textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].legend()
    fig.suptitle("Accuracy against model size, after each phase")
    _save(fig, path)


def _save(fig, path):
    from kslim._internal import files as _files

    fig.tight_layout()
    _files.write_atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "kslim's plots need matplotlib, which is not installed: pip install 'kslim[plots]' "
            "(or pass plots=False / --noplots)."
        ) from None
    return Figure
