"""The folder of a `kslim.slim` run: its arguments, its metrics and its checkpoints, for resuming.

Layout (paths relative to the run folder):

- `run.json`: the arguments the run was made with; a later call must match them.
- `metrics.json`: one record per finished phase, in order; written atomically
  after the phase's checkpoint, so a record always has its file.
- `initial.keras`, `pass{k}/sparse.keras`, `pass{k}/plan.json`, `pass{k}/pruned.keras`,
  `pass{k}/finetuned.keras`: the checkpoints; `pass{k}/*.csv` the epoch logs,
  `pass{k}/gammas.npz` the scaling factors before and after sparsity
  training, `pass{k}/*.backup/` Keras's mid-phase backups (gone once the phase
  is done).

With no folder (`path=None`) the same calls keep the records in memory and
write nothing.
"""

import io
import json
import os
import warnings

import numpy as np

from kslim._internal import files as _files
from kslim._internal.formatting import first_line

_RUN_FORMAT = "kslim.run/1"
_METRICS_FORMAT = "kslim.metrics/1"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
LOCK_FILE = ".kslim.lock"  # the pid of the process running in the folder, while it runs


class RunDir:
    """Reads and writes one run folder; `path=None` keeps everything in memory."""

    def __init__(self, path):
        self.path = None if path is None else os.fspath(path)
        self.records = []
        self._locked = False

    def join(self, relative):
        return None if self.path is None else os.path.join(self.path, relative)

    def open(self, arguments):
        """Starts a new run or reopens one made with the same `arguments`; returns its records.

        Raises:
            ValueError: if the folder holds a run made with other arguments,
                is not a run folder, or has damaged bookkeeping.
        """
        if self.path is None:
            return self.records
        arguments = _plain(arguments)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f"run_dir {self.path} is a file, not a folder; choose another run_dir.")
        os.makedirs(self.path, exist_ok=True)
        self.lock()
        try:
            return self._open(arguments)
        except BaseException:
            self.close()
            raise

    def lock(self):
        """Takes the folder for this process: a second run in it would delete the first's live backup.

        The lock is a file holding the pid, created with `O_CREAT | O_EXCL` (one process wins); a lock
        whose process no longer runs (killed) is taken over.

        Raises:
            ValueError: if a running process holds the folder, naming it and its pid.
        """
        lock = os.path.join(self.path, LOCK_FILE)
        for _ in range(10):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                pid = _lock_pid(lock)
                if pid is not None and _files._alive(pid):
                    raise ValueError(
                        f"run_dir {self.path} is in use by another kslim run (pid {pid}); wait for it to "
                        f"finish or stop it, or choose another run_dir (if no kslim run is there, delete {lock})."
                    ) from None
                try:  # a dead process's lock (or one torn while it was written): take it over
                    os.remove(lock)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()}\n")
            self._locked = True
            return
        raise ValueError(f"run_dir {self.path}: cannot take its lock {lock}; delete it if no kslim run is in the folder.")

    def close(self):
        """Gives the folder back (removes the lock this process holds)."""
        if self._locked:
            self._locked = False
            lock = os.path.join(self.path, LOCK_FILE)
            if _lock_pid(lock) == os.getpid():
                try:
                    os.remove(lock)
                except FileNotFoundError:
                    pass

    def _open(self, arguments):
        run_file = os.path.join(self.path, RUN_FILE)
        if os.path.isfile(run_file):
            stored = _read_json(run_file, RUN_FILE, self.path)
            if not isinstance(stored, dict) or stored.get("format") != _RUN_FORMAT:
                raise ValueError(
                    f"{run_file} is not a kslim run file; choose another run_dir, or delete "
                    f"{self.path} to start over."
                )
            _check_same(stored.get("arguments", {}), arguments, self.path)
            self.records = self._read_records()
            return self.records
        if [name for name in os.listdir(self.path) if name != LOCK_FILE]:
            raise ValueError(
                f"run_dir {self.path} exists and is not a kslim run (it has no {RUN_FILE}); "
                "choose a new or empty folder."
            )
        os.makedirs(self.path, exist_ok=True)
        self.write_text(RUN_FILE, json.dumps({"format": _RUN_FORMAT, "arguments": arguments}, indent=1))
        self.records = []
        self.write_text(METRICS_FILE, self._metrics_json())
        return self.records

    def add(self, record):
        """Appends a finished phase's record and rewrites `metrics.json`."""
        self.records.append(_plain(record))
        if self.path is not None:
            self.write_text(METRICS_FILE, self._metrics_json())

    def drop_last(self):
        """Forgets the last record (its checkpoint is damaged), so that its phase runs again."""
        self.records.pop()
        if self.path is not None:
            self.write_text(METRICS_FILE, self._metrics_json())

    def save_model(self, relative, model):
        if self.path is not None:
            self._makedirs(relative)
            _files.write_atomic(self.join(relative), lambda path: _files.save_model(model, path))

    def load_model(self, relative):
        path = self.join(relative)
        if not os.path.isfile(path):
            raise ValueError(
                f"run_dir {self.path} is damaged: {METRICS_FILE} lists {relative} as done but the "
                f"file is missing; delete {self.path} to start over."
            )
        return _files.load_model(path)

    def write_text(self, relative, text):
        if self.path is not None:
            self._makedirs(relative)
            _files.write_atomic(self.join(relative), lambda p: _write(p, text.encode()))

    def save_arrays(self, relative, **arrays):
        if self.path is not None:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            self._makedirs(relative)
            _files.write_atomic(self.join(relative), lambda p: _write(p, buffer.getvalue()))

    def _makedirs(self, relative):
        os.makedirs(os.path.dirname(self.join(relative)), exist_ok=True)

    def _metrics_json(self):
        return json.dumps({"format": _METRICS_FORMAT, "records": self.records}, indent=1)

    def _read_records(self):
        path = os.path.join(self.path, METRICS_FILE)
        if not os.path.isfile(path):
            return []
        try:
            data = _read_json(path, METRICS_FILE, self.path)
        except ValueError as error:
            data = str(error)
        if not isinstance(data, dict) or data.get("format") != _METRICS_FORMAT:
            reason = data if isinstance(data, str) else "it is not a kslim metrics file"
            warnings.warn(
                f"{path} is damaged ({reason}); discarding it and running every phase again.",
                stacklevel=4,
            )
            return []
        return list(data.get("records", []))


def _lock_pid(lock):
    """The pid a lock file holds, or None (gone, empty or torn)."""
    try:
        with open(lock) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def read_metrics(path):
    """The records of a run folder's `metrics.json` (a list of dicts).

    Raises:
        FileNotFoundError: if the folder has no `metrics.json`.
        ValueError: if the file is not a kslim metrics file.
    """
    file = os.path.join(os.fspath(path), METRICS_FILE)
    if not os.path.isfile(file):
        raise FileNotFoundError(f"No {METRICS_FILE} in {path}; pass the run_dir of a kslim.slim run.")
    data = _read_json(file, METRICS_FILE, path)
    if not isinstance(data, dict) or data.get("format") != _METRICS_FORMAT:
        raise ValueError(f"{file} is not a kslim metrics file.")
    return list(data.get("records", []))


def backup_damage(folder):
    """Why a Keras `BackupAndRestore` folder cannot be resumed from, or None when it is whole.

    A process killed while Keras writes its backup leaves a truncated
    `latest.weights.h5` or `training_metadata.json`; Keras would fail on it at
    every later attempt. Every weight array is read, so truncated data is
    found as well as a truncated header.
    """
    import h5py

    weights = os.path.join(folder, "latest.weights.h5")
    metadata = os.path.join(folder, "training_metadata.json")
    if not os.path.exists(weights) and not os.path.exists(metadata):
        return None
    if not (os.path.exists(weights) and os.path.exists(metadata)):
        return f"it has only {os.path.basename(weights if os.path.exists(weights) else metadata)}"
    try:
        with open(metadata) as f:
            epoch = json.load(f)["epoch"]
        if not isinstance(epoch, int) or epoch < 0:
            return f"training_metadata.json gives epoch {epoch!r}"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"training_metadata.json: {first_line(error)}"
    try:
        def read(name, item):
            if isinstance(item, h5py.Dataset):
                item[()]

        with h5py.File(weights, "r") as f:
            f.visititems(read)
    except Exception as error:  # h5py raises OSError, KeyError or RuntimeError for damaged files
        return f"latest.weights.h5: {first_line(error)}"
    return None


def backup_epoch(folder):
    """The number of finished epochs a whole Keras backup folder records."""
    with open(os.path.join(folder, "training_metadata.json")) as f:
        return int(json.load(f)["epoch"])


def _check_same(stored, given, path):
    """Raises naming the first argument (dotted, e.g. `recipe.lr`) whose value differs."""
    difference = _first_difference(stored, given)
    if difference is not None:
        name, old, new = difference
        raise ValueError(
            f"run_dir {path} holds a run made with {name}={_show(old)}, but this call has "
            f"{name}={_show(new)}. Pass {name}={_show(old)} to resume that run, or choose another "
            f"run_dir (or delete {path}) to start a new one."
        )


def _first_difference(old, new, prefix=""):
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            found = _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    if old != new:
        return prefix.rstrip("."), old, new
    return None


def _show(value):
    return "None" if value is None else json.dumps(value)


def _plain(value):
    """`value` as JSON would give it back (tuples become lists), so comparisons are exact."""
    return json.loads(json.dumps(value))


def _read_json(path, name, folder):
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{path} is not valid JSON ({error}); delete {folder} to start the run over."
        ) from None


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)
