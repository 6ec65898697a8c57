"""Atomic writes leave nothing behind, even when the writing process is killed."""

import os
import signal
import subprocess
import sys
import time

import pytest

import kslim

from kslim._internal import files

_KILLED_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("files", sys.argv[1])
files = importlib.util.module_from_spec(spec)
spec.loader.exec_module(files)

def write(path):
    with open(path, "w") as f:
        f.write("half a model")
    time.sleep(120)  # killed here, mid-write

files.write_atomic(sys.argv[2], write)
"""


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".kslim-"))


def _written(folder):
    """Whether a temporary in `folder` holds content (it may vanish while we look)."""
    for name in _temporaries(folder):
        try:
            if os.path.getsize(os.path.join(folder, name)):
                return True
        except OSError:
            pass
    return False


def test_a_write_killed_midway_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "model.keras"
    writer = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, files.__file__, str(target)])
    # Wait for the half-written content, not for the name: temp_path makes the name with mkstemp and
    # removes the file again before the write opens it, and a kill in between leaves nothing.
    deadline = time.time() + 60
    while not _written(tmp_path) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    left = _temporaries(tmp_path)
    assert left and left[0].startswith(f".kslim-{writer.pid}-") and not target.exists()

    mine = tmp_path / f".kslim-{os.getpid()}-busy.keras"  # a live process's write is left alone
    mine.write_text("in progress")
    files.write_atomic(tmp_path / "other.txt", lambda p: open(p, "w").write("ok"))
    assert _temporaries(tmp_path) == [mine.name]
    assert (tmp_path / "other.txt").read_text() == "ok"


def test_stale_temporary_folders_are_removed_too(tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = tmp_path / f".kslim-{gone.stdout.strip()}-abc.tmp"
    (stale / "saved_model").mkdir(parents=True)
    (stale / "saved_model" / "weights.bin").write_bytes(b"0" * 1000)
    unrelated = tmp_path / ".kslim-notes"  # not a kslim temporary name: kept
    unrelated.write_text("mine")
    fresh = files.temp_path(str(tmp_path), directory=True)
    assert not stale.exists() and unrelated.exists() and os.path.isdir(fresh)


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: a real full disk (needs root; skipped elsewhere)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_names_the_file_and_leaves_nothing(full_disk):
    target = full_disk / "big.bin"
    with pytest.raises(OSError, match=rf"No space left on the device to write {target}; nothing was written"):
        files.write_atomic(target, lambda p: open(p, "wb").write(b"0" * 1_000_000))
    assert os.listdir(full_disk) == []


def test_a_full_disk_during_a_saved_model_export_is_one_clear_error(full_disk):
    model = kslim.models.get("vgg11", widths=[64] * 8)  # ~1 MB of weights
    for output in (full_disk / "saved", full_disk / "model.tflite"):
        with pytest.raises(OSError, match=rf"to write {output}; nothing was written"):
            kslim.export(model, output, format="saved_model" if output.suffix == "" else "tflite")
        assert os.listdir(full_disk) == []
