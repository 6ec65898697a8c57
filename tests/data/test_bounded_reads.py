"""Reads are bounded: an archive that would expand without limit, a member that is not an image, a file
of zeros named .tar.gz, and a .keras whose config.json is huge are refused in one line, before the bytes
are read or written. Each malicious file is made here, small (sizes are declared in headers, or holes)."""

import io
import os
import tarfile
import time
import zipfile

import numpy as np
import pytest

from kslim._internal import files
from kslim.data import _cache, archive


def _tar(path, members, mode="w:gz"):
    """A real archive of `(name, bytes)` members (a None payload makes a folder)."""
    with tarfile.open(path, mode) as tar:
        for name, payload in members:
            info = tarfile.TarInfo(name)
            if payload is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    return path


def _declared(path, name, size):
    """A .tar whose one member's header declares `size` bytes, followed by only 1 KiB of them."""
    info = tarfile.TarInfo(name)
    info.size = size
    path.write_bytes(info.tobuf(tarfile.GNU_FORMAT) + b"\0" * 1024)
    return path


def _extracted():
    folder = os.path.join(_cache.cache_dir(), "archives")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_an_archive_of_images_still_extracts(tmp_path):
    png = b"\x89PNG fake"
    path = _tar(tmp_path / "ok.tar.gz", [("data", None), ("data/train", None), ("data/train/a", None),
                                          ("data/train/a/1.png", png), ("data/README.md", b"# cats")])
    folder = archive.extract(str(path))
    assert os.path.isfile(os.path.join(folder, "data", "train", "a", "1.png"))


def test_a_member_declaring_more_than_the_ratio_allows_is_refused_before_it_is_extracted(tmp_path):
    before = _extracted()
    path = _declared(tmp_path / "bomb.tar", "train/a/1.png", 3 * 10**9)  # 3 GB declared in a 1.5 KiB file
    with pytest.raises(ValueError) as caught:
        archive.extract(str(path))
    assert str(caught.value).startswith(f"{path} expands to more than 256.00 MiB (member 'train/a/1.png' "
                                        "declares 2.79 GiB), over 200 times the archive's 1.50 KiB: refusing")
    assert _extracted() == before  # nothing of it is left in the cache


def test_an_archive_over_the_total_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(archive, "MAX_BYTES", 3000)
    monkeypatch.setattr(archive, "_RATIO_FROM", 10**9)
    payload = np.random.default_rng(0).bytes(2000)
    path = _tar(tmp_path / "big.tar.gz", [("train/a/1.png", payload), ("train/a/2.png", payload)])
    with pytest.raises(ValueError, match=r"expands to more than 2\.93 KiB \(member 'train/a/2.png' declares "
                                         r"1\.95 KiB\), over kslim's limit of 2\.93 KiB"):
        archive.extract(str(path))


@pytest.mark.parametrize("member,what", [
    ("train/a/run.sh", "is a 4 B file that is not an image"),
    ("link", "is a link"),
    ("fifo", "is a device, pipe or other special file"),
])
def test_members_that_are_not_images_or_folders_are_refused_naming_them(tmp_path, member, what):
    path = tmp_path / "odd.tar"
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo(member)
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "train/a/1.png"
            tar.addfile(info)
        elif member == "fifo":
            info.type = tarfile.FIFOTYPE
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"echo"))
    with pytest.raises(ValueError) as caught:
        archive.extract(str(path))
    assert str(caught.value) == (
        f"{path}: member '{member}' {what}; a dataset archive holds only folders and images (.png, .jpg, .jpeg, "
        ".bmp, .gif) or a CIFAR python folder. Remove it from the archive."
    )


def test_a_sparse_file_of_zeros_named_tar_gz_is_refused_at_once(tmp_path):
    path = tmp_path / "zeros.tar.gz"
    with open(path, "wb") as f:
        f.truncate(2 << 30)  # 2 GiB of hole: no disk used; lzma used to read it all as stream padding
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"zeros.tar.gz is not a tar archive: it is neither gzip, bzip2 nor xz "
                                         r"compressed, nor a tar file \(its first bytes are 0000000000000000\)"):
        archive.extract(str(path))
    assert time.monotonic() - start < 5


def test_a_keras_file_with_a_huge_config_is_refused_before_keras_reads_it(tmp_path):
    path = tmp_path / "huge.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("metadata.json", "{}")
        with z.open("config.json", "w", force_zip64=True) as f:
            chunk = b" " * 2**20
            for _ in range(65):  # 65 MiB of spaces, a 65 KiB member
                f.write(chunk)
    assert os.path.getsize(path) < 2**20
    with pytest.raises(ValueError) as caught:
        files.load_model(path)
    assert str(caught.value) == (
        f"{path} is not a Keras model kslim will read: its config.json is 68,157,440 bytes, over the 64 MiB a "
        "model's configuration needs (a damaged or hostile file); pass a .keras file saved with model.save()."
    )
