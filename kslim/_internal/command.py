"""What every bin/kslim-* command does before the library loads: flag checks, Ctrl-C, warnings.

Importing kslim imports TensorFlow (5 s on an idle machine, 18-36 s under
load), so a missing file or a wrong combination of flags is refused here,
before that, in one line naming the flag. The commands load this file by its
path (`load` in each `bin/kslim-*`), without kslim's `__init__`: it must not
import kslim, TensorFlow or Keras.
"""

import os
import re
import sys
import warnings

from absl import app
from absl import flags

_PATH_EXTENSIONS = (".npz", ".tar.gz", ".tgz", ".tar", ".keras")
INTERRUPTED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


class Command:
    """One command's name, its flags, and whether an interrupted run resumes."""

    def __init__(self, name, resumes=False):
        self.name = name
        self.resumes = resumes

    def run(self, main):
        """Parses the flags (errors in one line), then runs `main` with the command's warnings and Ctrl-C."""
        argv = sys.argv
        if {"-h", "--help", "--helpshort"} & set(argv[1:]):  # absl's own --help exits 1
            app.usage(shorthelp=True, writeto_stdout=True, exitcode=0)
        try:
            try:
                flags.FLAGS(argv)  # absl would print two lines; one is enough
            except flags.Error as error:  # absl lists every failing flag, a line each: the first is enough
                self.fail(str(error).strip().splitlines()[0])
            warnings.showwarning = self.show_warning
            app.run(main, argv=argv)
        except KeyboardInterrupt:
            then = "run the same command again to resume" if self.resumes else "nothing was written"
            _write_stderr(f"{self.name}: interrupted; {then}.\n")
            sys.exit(INTERRUPTED_EXIT_CODE)

    def fail(self, error):
        """Exits with code 1 and one line: `<command>: error: <message in the command's words>`."""
        sys.exit(f"{self.name}: error: {self.words(str(error))}")

    def refuse(self, *problems):
        """Fails with the first problem that is not None (each a message naming its flag)."""
        for problem in problems:
            if problem is not None:
                self.fail(problem)

    def show_warning(self, message, category, filename, lineno, file=None, line=None):
        """`warnings.showwarning` for the commands: one line in the command's words, no source line."""
        text = " ".join(str(message).split())
        _write_stderr(f"{self.name}: warning: {self.words(text)}\n", file)

    def words(self, text):
        """`text` with the library's argument names (`overwrite=True`, `atol=0.5`) as this command's flags."""
        known = set(flags.FLAGS)

        def flag(match):
            name, value = match.group(1), match.group(2)
            if name not in known:
                return match.group(0)
            if value == "True":
                return f"--{name}"
            if value == "False":
                return f"--no{name}"
            return f"--{name}={value.strip(chr(39))}"

        # An export is written into a `.kslim-<pid>-<random>.tmp/` folder beside the output, under the
        # output's name: without that folder, the path is the user's.
        text = re.sub(r"\.kslim-\d+-[A-Za-z0-9_]+\.tmp/", "", text)
        return re.sub(r"(?<![\w.\-])([a-z_][a-z0-9_]*)=('[^']*'|[\w.+\-]*\w)", flag, text)


def _write_stderr(text, file=None):
    stream = file if file is not None else sys.stderr
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def model_file(path):
    """absl validator of `--model` / `--init`: a `.keras` path must be a file (a zoo name passes)."""
    if path is not None and path.endswith(".keras") and not os.path.isfile(path):
        raise flags.ValidationError("no such file; check the path.")
    return True


def existing_file(path):
    """absl validator of an input file (`--plan`): it must be a file."""
    if path is not None and not os.path.isfile(path):
        raise flags.ValidationError("no such file; check the path.")
    return True


def data_path(value):
    """absl validator of `--data`: a dataset name passes; a path (a folder or a file) must exist."""
    looks_like_path = os.sep in value or value.lower().endswith(_PATH_EXTENSIONS)
    if looks_like_path and not os.path.exists(value):
        raise flags.ValidationError(
            "no such file or folder; give a dataset name (mnist) or the path of an .npz, an archive or a folder."
        )
    return True


def output_problem(output, overwrite, flag="output", suffix=None, inputs=()):
    """Why `--<flag>=output` cannot be written, or None: a wrong extension, a missing folder, a name
    longer than the folder's file system allows, an existing file without `--overwrite`, an input."""
    if output is None:
        return None
    if suffix is not None and not output.endswith(suffix):
        return f"--{flag}={output} must end in {suffix} (Keras's model format)."
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        return f"--{flag}={output}: the folder {folder} does not exist; create it first."
    for path in inputs:
        if path is not None and os.path.exists(path) and _same(path, output):
            return f"--{flag}={output} is an input file; choose another output path."
    problem = name_problem(output, flag)
    if problem is not None:
        return problem
    if os.path.lexists(output) and not overwrite:
        return f"--{flag}={output} already exists; pass --overwrite to replace it."
    return None


def name_problem(path, flag):
    """Why the file name of `path` is too long for its folder's file system (`PC_NAME_MAX`), or None."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        most = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return None
    # kslim writes a temporary `.kslim-<pid>-<random><ext>` first: its name must fit too.
    name = os.fsencode(os.path.basename(path))
    if len(name) > most:
        return (
            f"--{flag}={path}: the file name is {len(name)} bytes, longer than the {most} bytes the file "
            f"system of {folder} allows; choose a shorter name."
        )
    return None


def _same(a, b):
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
