"""Where kslim keeps what it derives from a dataset: extracted archives, decoded arrays, statistics.

Everything here is a pure cache: deleting the folder only costs the time to
rebuild it. Entries are written to a temporary name and renamed into place, so
an interrupted run never leaves a half-written entry that a later run trusts.
"""

import hashlib
import json
import os
import re

import numpy as np

from kslim._internal import files as _files


def cache_dir():
    """The cache folder: `$KSLIM_CACHE_DIR`, else `$XDG_CACHE_HOME/kslim`, else `~/.cache/kslim`."""
    path = os.environ.get("KSLIM_CACHE_DIR")
    if not path:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        path = os.path.join(base, "kslim")
    return os.path.abspath(os.path.expanduser(path))


def entry(kind, label, *fingerprint):
    """A folder for one cache entry, named after `label` and a hash of `fingerprint`.

    Args:
        kind: str, the sub-folder (`"arrays"`, `"archives"`, `"stats"`).
        label: str, a readable part of the name (the dataset's file name).
        *fingerprint: JSON-serialisable values that change when the source
            changes (its absolute path, size, modification time, listing).

    Returns:
        The folder's path (not created).
    """
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    label = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:60] or "data"
    return os.path.join(cache_dir(), kind, f"{label}-{digest}")


def file_fingerprint(path):
    """Absolute path, size and modification time of a file: changes when the file does."""
    st = os.stat(path)
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def save_npy(path, array):
    """Writes `array` to `path` atomically (temporary file, then rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _files.temp_path(os.path.dirname(path), suffix=".npy.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_npy(path):
    """Reads an array written by `save_npy`, or returns None when there is none."""
    if not os.path.exists(path):
        return None
    return np.load(path, allow_pickle=False)


def save_json(path, value):
    """Writes `value` as JSON to `path` atomically."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = _files.temp_path(os.path.dirname(path), suffix=".json.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(value, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_json(path):
    """Reads JSON written by `save_json`, or returns None when there is none or it is unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
