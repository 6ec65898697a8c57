"""Dataset archives (`.tar.gz`, `.tgz`, `.tar`): extracted once into kslim's cache, then reused.

An archive may hold an image folder (`train/<class>/...`, `test/<class>/...`,
possibly under one top folder, like `cifar10-jpeg.tar.gz`) or a CIFAR python
folder (the official `cifar-10-python.tar.gz`). It is extracted into
`$KSLIM_CACHE_DIR/archives/<name>-<hash>/` (default `~/.cache/kslim`), keyed
by the archive's path, size and modification time, so a changed archive is
extracted afresh. Extraction uses `tarfile`'s `data` filter: no absolute
paths, no `..`, no links out of the folder, no device files.
"""

import os
import shutil
import tarfile

from kslim._internal import files as _files
from kslim.data import _cache

EXTENSIONS = (".tar.gz", ".tgz", ".tar")


def is_archive(path):
    """True if `path` names a tar archive by its extension."""
    return str(path).lower().endswith(EXTENSIONS)


def extract(path):
    """Extracts `path` into the cache (once) and returns the extracted folder.

    Args:
        path: str, a `.tar.gz`, `.tgz` or `.tar` file.

    Returns:
        str, the folder the archive was extracted into.

    Raises:
        ValueError: if the file is not a readable tar archive.
    """
    label = os.path.basename(path)
    for ext in EXTENSIONS:
        if label.lower().endswith(ext):
            label = label[: -len(ext)]
            break
    target = _cache.entry("archives", label, *_cache.file_fingerprint(path))
    if os.path.isdir(target):
        return target
    os.makedirs(os.path.dirname(target), exist_ok=True)
    # Extract beside the target and rename, so a crash never leaves a partial folder that looks done.
    tmp = _files.temp_path(os.path.dirname(target), suffix=".extracting", directory=True)
    try:
        try:
            with tarfile.open(path) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ValueError(
                f"Cannot extract {path}: {e}. Pass a .tar.gz of an image folder "
                "(train/<class>/*.jpg, test/<class>/...) or of a CIFAR python folder."
            ) from e
        try:
            os.rename(tmp, target)
        except OSError:
            if not os.path.isdir(target):  # not merely another process finishing first
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target
