"""Reading and writing model files for kslim's commands: safe loading, atomic saving."""

import errno
import os
import re
import shutil
import tempfile
import zipfile

from kslim._internal.formatting import first_line

# Every temporary file or folder kslim makes is named `.kslim-<pid>-<random><suffix>`: when the
# process that made it is gone (killed during a write), the next write into the same folder
# removes it.
_TEMP = re.compile(r"^\.kslim-(\d+)-")
MAX_CONFIG_BYTES = 64 * 2**20  # a config is the JSON of the layers: kilobytes, a few MiB for the deepest nets


def load_model(path):
    """Loads a `.keras` file with safe mode on, with one-line errors.

    Raises:
        FileNotFoundError: if there is no file at `path`.
        ValueError: if the file is not a Keras model kslim can load.
    """
    import keras

    import kslim  # noqa: F401  registers kslim's layers and regularizers before loading

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at '{path}'; check the model's path.")
    check_keras_file(path)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # zipfile, JSON and deserialization errors alike
        raise ValueError(
            f"{path} is not a Keras model file that kslim can load ({first_line(error)}); pass a .keras "
            "file saved with model.save()."
        ) from error
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a keras.Model.")
    return model


def check_keras_file(path):
    """Refuses a file that is not a `.keras` zip (Keras would say "File not found" of it).

    Raises:
        ValueError: naming the file and what it is instead.
    """
    try:
        is_zip = zipfile.is_zipfile(path)
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror}; check the file.") from None
    if not is_zip:
        raise ValueError(
            f"{path} is not a Keras model file: a .keras file is a zip archive, and this one is not (corrupt, "
            "truncated, or another format); pass a .keras file saved with model.save()."
        )
    # Keras reads config.json whole into memory and parses it: a 2 GiB one took 4.8 GB. The zip's
    # directory says how large it is before a byte of it is read.
    try:
        with zipfile.ZipFile(path) as archive:
            sizes = {info.filename: info.file_size for info in archive.infolist()}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ValueError(f"{path} is not a Keras model file: its zip directory is damaged ({error}).") from None
    for name in ("config.json", "metadata.json"):
        if sizes.get(name, 0) > MAX_CONFIG_BYTES:
            raise ValueError(
                f"{path} is not a Keras model kslim will read: its {name} is {sizes[name]:,} bytes, over the "
                f"{MAX_CONFIG_BYTES // 2**20} MiB a model's configuration needs (a damaged or hostile file); "
                "pass a .keras file saved with model.save()."
            )


def check_name(path, what="output"):
    """Refuses a file name longer than its folder's file system allows (`PC_NAME_MAX`, 255 bytes on ext4),
    before any work: the write itself would fail only at the end."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        most = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):  # a missing folder is reported by the caller
        return
    name = os.fsencode(os.path.basename(path))
    if len(name) > most:
        raise ValueError(
            f"Cannot write the {what} {path}: its file name is {len(name)} bytes, longer than the {most} bytes "
            f"the file system of {folder} allows; choose a shorter name."
        )


def save_model(model, path):
    """Saves what a user's `.keras` file needs: `model`'s layers and weights, without kslim's penalties
    and without its compiled state (kslim's `CoupledSGD`), so that plain Keras loads the file in a process
    that never imported kslim, unless a layer needs kslim (`ChannelSelect`, `BorderBias`). `model` is left
    as it is: a copy from its config is saved (`clone_model` would compile the copy as the model is). A
    model that cannot be rebuilt from its config (subclassed) is saved as it is.
    """
    from kslim.sparsity.attachment import detach

    try:
        copy = type(model).from_config(model.get_config())
    except (TypeError, ValueError, NotImplementedError):
        model.save(path)
        return
    copy.set_weights(model.get_weights())
    detach(copy).save(path)


def check_output(output, inputs=(), overwrite=False):
    """Refuses an output path that is one of the inputs, or that exists without `overwrite`."""
    output = os.fspath(output)
    for path in inputs:
        if path is not None and same_file(output, os.fspath(path)):
            raise ValueError(f"The output {output} is an input file; choose another output path.")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Cannot write {output}: the folder {folder} does not exist; create it first."
        )
    check_name(output)
    if os.path.lexists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists; pass overwrite=True to replace it.")


def same_file(a, b):
    """Whether two paths name one file, through symbolic links and hard links too."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def write_atomic(path, write):
    """Calls `write(tmp_path)` on a temporary file beside `path`, then renames it into place.

    A failure leaves no file behind. The temporary file keeps `path`'s
    extension, since Keras picks the format from it.
    """
    write_all_atomic([(path, write)])


def write_all_atomic(jobs):
    """Writes several files so that either all of them appear or none does.

    Each `(path, write)` job writes a temporary file beside its path; only
    when every write has succeeded are they renamed into place. A failure
    (a missing or read-only folder, a full disk) leaves no file behind and
    every existing file as it was.
    """
    jobs = [(os.fspath(path), write) for path, write in jobs]
    for path, _ in jobs:  # every name, before any work: a plan's name that cannot be written leaves no model
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"Cannot write {path}: the folder {folder} does not exist.")
        check_name(path)
    staged = []
    try:
        for path, write in jobs:
            folder = os.path.dirname(os.path.abspath(path))
            tmp = temp_path(folder, suffix=os.path.splitext(path)[1])
            staged.append((tmp, path))
            try:
                write(tmp)
            except Exception as error:
                if is_disk_full(error):
                    raise disk_full_error(path) from None
                raise _naming(error, tmp, path) from error
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.lexists(tmp):
                os.remove(tmp)


def _naming(error, tmp, path):
    """`error` of a write to the temporary `tmp`, as an error naming the user's `path` instead."""
    text = first_line(error).replace(tmp, path).replace(os.path.basename(tmp), os.path.basename(path))
    if os.path.basename(path) not in text:
        text = f"{text} (writing {path})"
    if isinstance(error, OSError):
        reason = (error.strerror or text).replace(tmp, path).rstrip(".")
        return OSError(f"Cannot write {path}: {reason}.")
    if isinstance(error, TypeError):
        return TypeError(text)
    return ValueError(f"Cannot write {path}: {text}")


def temp_path(folder, suffix="", directory=False):
    """A new temporary name in `folder` (a folder is created when `directory`), after cleaning up.

    Stale temporary files and folders that killed kslim processes left in
    `folder` are removed first (`clean_stale`). A file's name is returned
    unused (Keras refuses to overwrite some paths); a folder is created.
    """
    clean_stale(folder)
    prefix = f".kslim-{os.getpid()}-"
    if directory:
        return tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=folder)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    os.remove(tmp)
    return tmp


def clean_stale(folder):
    """Removes the `.kslim-<pid>-*` temporaries in `folder` whose process no longer runs."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _TEMP.match(entry.name)
        if match is None or _alive(int(match.group(1))):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.remove(entry.path)
        except OSError:
            pass  # another process cleaned it, or it is not ours to remove


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def is_disk_full(error):
    """Whether `error` (an OSError, or TensorFlow's ResourceExhaustedError) means the disk is full."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or (
        "No space left on device" in str(error) or "Disk quota exceeded" in str(error)
    )


def disk_full_error(path):
    """The error kslim raises for a full disk: it names the file, and says nothing was written."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    return OSError(
        errno.ENOSPC,
        f"No space left on the device to write {path}; nothing was written. Free space in {folder} "
        "or choose an output on another disk.",
    )
