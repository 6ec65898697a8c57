"""Dataset archives (`.tar.gz`, `.tgz`, `.tar`): extracted once into kslim's cache, then reused.

An archive may hold an image folder (`train/<class>/...`, `test/<class>/...`,
possibly under one top folder, like `cifar10-jpeg.tar.gz`) or a CIFAR python
folder (the official `cifar-10-python.tar.gz`). It is extracted into
`$KSLIM_CACHE_DIR/archives/<name>-<hash>/` (default `~/.cache/kslim`), keyed
by the archive's path, size and modification time, so a changed archive is
extracted afresh. Extraction uses `tarfile`'s `data` filter: no absolute
paths, no `..`, no links out of the folder, no device files.

Reads are bounded: the compression is read from the file's first bytes (an
archive of zeros is refused at once, not after `lzma` has read it whole as
stream padding); members may only be folders, images and a CIFAR python
folder's files (and small text files: a README, a label list); and each
member's size is checked from its header, before it is extracted, against
`MAX_BYTES` in all and `MAX_RATIO` times the archive's own size (CIFAR-10's
JPEG tarball expands 1.1 times; a zip bomb thousands of times).
"""

import os
import shutil
import tarfile

from kslim._internal.formatting import human_bytes

from kslim._internal import files as _files
from kslim.data import _cache

EXTENSIONS = (".tar.gz", ".tgz", ".tar")
MAX_BYTES = 20 * 10**9  # what the members of one archive may hold in all
MAX_RATIO = 200  # how many times its own size an archive may expand to (images compress little)
_RATIO_FROM = 256 * 2**20  # below this, small archives of tiny files (mostly headers) pass
_MAX_TEXT = 2**20
_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_TEXTS = (".txt", ".md", ".html", ".csv", ".json", ".txt~")
_CIFAR_FILES = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch", "batches.meta", "train", "test", "meta"}
_MAGIC = ((b"\x1f\x8b", "r:gz"), (b"BZh", "r:bz2"), (b"\xfd7zXZ\x00", "r:xz"))


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
            with tarfile.open(path, _mode(path)) as tar:
                _extract_bounded(tar, path, tmp)
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


def _mode(path):
    """tarfile's mode for the compression the file's first bytes show; a file that is none is refused."""
    with open(path, "rb") as f:
        head = f.read(512)
    for magic, mode in _MAGIC:
        if head.startswith(magic):
            return mode
    if head[257:262] == b"ustar" or (len(head) == 512 and _is_v7_header(head)):
        return "r:"
    raise ValueError(
        f"{path} is not a tar archive: it is neither gzip, bzip2 nor xz compressed, nor a tar file "
        f"(its first bytes are {head[:8].hex() or 'none: it is empty'}); pass a .tar.gz of an image folder."
    )


def _is_v7_header(block):
    try:
        tarfile.TarInfo.frombuf(block, tarfile.ENCODING, "surrogateescape")
        return True
    except tarfile.HeaderError:
        return False


def _extract_bounded(tar, path, folder):
    """Extracts member after member, each checked from its header before a byte of it is written."""
    budget = min(MAX_BYTES, max(MAX_RATIO * os.path.getsize(path), _RATIO_FROM))
    total = 0
    for member in tar:
        _check_member(member, path)
        total += member.size
        if total > budget:
            limit = (f"{MAX_RATIO} times the archive's {human_bytes(os.path.getsize(path))}"
                     if budget < MAX_BYTES else f"kslim's limit of {human_bytes(MAX_BYTES)}")
            raise ValueError(
                f"{path} expands to more than {human_bytes(budget)} (member '{member.name}' declares "
                f"{human_bytes(member.size)}), over {limit}: refusing to extract it (a damaged archive or "
                "an archive bomb); extract it yourself and pass the folder if it is really that large."
            )
        tar.extract(member, folder, filter="data")


def _check_member(member, path):
    name = os.path.basename(member.name.rstrip("/"))
    lower = name.lower()
    if member.isdir():
        return
    if member.isfile():
        if lower.endswith(_IMAGES) or name in _CIFAR_FILES:
            return
        if lower.endswith(_TEXTS) and member.size <= _MAX_TEXT:
            return
        what = f"a {human_bytes(member.size)} file that is not an image"
    else:
        what = "a link" if member.issym() or member.islnk() else "a device, pipe or other special file"
    raise ValueError(
        f"{path}: member '{member.name}' is {what}; a dataset archive holds only folders and images "
        f"({', '.join(_IMAGES)}) or a CIFAR python folder. Remove it from the archive."
    )
