"""Reading and writing model files for kslim's commands: safe loading, atomic saving."""

import os
import tempfile


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
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # zipfile, JSON and deserialization errors alike
        text = str(error).strip()
        first_line = text.splitlines()[0] if text else type(error).__name__
        raise ValueError(
            f"{path} is not a Keras model file that kslim can load ({first_line}); pass a .keras "
            "file saved with model.save()."
        ) from error
    if not isinstance(model, keras.Model):
        raise ValueError(f"{path} holds a {type(model).__name__}, not a keras.Model.")
    return model


def check_output(output, inputs=(), overwrite=False):
    """Refuses an output path that is one of the inputs, or that exists without `overwrite`."""
    output = os.fspath(output)
    for path in inputs:
        if path is not None and _same_file(output, os.fspath(path)):
            raise ValueError(f"The output {output} is an input file; choose another output path.")
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"Cannot write {output}: the folder {folder} does not exist; create it first."
        )
    if os.path.lexists(output) and not overwrite:
        raise FileExistsError(f"{output} already exists; pass overwrite=True (--overwrite on the command line) to replace it.")


def _same_file(a, b):
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
    staged = []
    try:
        for path, write in jobs:
            path = os.fspath(path)
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise FileNotFoundError(f"Cannot write {path}: the folder {folder} does not exist.")
            fd, tmp = tempfile.mkstemp(prefix=".kslim-", suffix=os.path.splitext(path)[1], dir=folder)
            os.close(fd)
            os.remove(tmp)  # Keras refuses to overwrite some paths; let it create the file
            staged.append((tmp, path))
            write(tmp)
        for tmp, path in staged:
            os.replace(tmp, path)
    finally:
        for tmp, _ in staged:
            if os.path.lexists(tmp):
                os.remove(tmp)
