"""Drops TensorFlow's C++ start-up and converter lines from stderr, for the bin/kslim-* commands.

TensorFlow 2.21 logs through absl's C++ logging before Python can configure
it, so `TF_CPP_MIN_LOG_LEVEL` no longer hides lines such as "oneDNN custom
operations are on", "Could not find cuda drivers" or "failed call to cuInit".
`filter_stderr` routes file descriptor 2 through a pipe and a thread that
forwards every line except those, so the commands' own messages and every
real warning or traceback still reach the terminal. Also dropped: the C++
INFO lines (the commands run at absl's WARNING level; `--verbosity 0` shows
them), what the TFLite converter and LiteRT print on every export (`Ignored
output_format`, `fully_quantize: 0, inference_type: 6, ...`, `Created
TensorFlow Lite XNNPACK delegate`), and libjpeg's `Input file read error`,
which kslim reports itself, naming the image. This module must not
import TensorFlow or Keras: it runs before them.
"""

import atexit
import os
import re
import sys
import threading

_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port|cudart_stub|cpu_feature_guard|cuda_platform|cuda_executor"
    r"|cuda_diagnostics|dso_loader|gpu_device)\.cc:\d+\]"
    r"|I\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\]"  # C++ INFO lines
    r"|W\d{4} [\d:.]+\s+\d+ (tf_tfl_flatbuffer_helpers|flatbuffer_export)\.cc:\d+\]"
    r"|fully_quantize: \d+, inference_type: \d+, input_inference_type: "
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
    r"|Estimated count of arithmetic ops: "
    r"|Input file read error$"
    r"|E\d{4} [\d:.]+\s+\d+ jpeg_mem\.cc:\d+\]"  # a JPEG that fails to decode, which kslim names itself
    r"|W\d{4} [\d:.]+\s+\d+ local_rendezvous\.cc:\d+\] Local rendezvous is aborting with status: "
    r"INVALID_ARGUMENT: jpeg::"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)"
)
_installed = False


def is_noise(line):
    """Whether a stderr line is one of TensorFlow's start-up messages."""
    return _NOISE.match(line) is not None


def filter_stderr():
    """Filters TensorFlow's start-up lines out of this process's stderr, until it exits."""
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not is_noise(line.decode("utf-8", "replace")):
                    os.write(terminal, line)

    thread = threading.Thread(target=forward, name="kslim-stderr", daemon=True)
    thread.start()

    def restore():
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(terminal, 2)  # closes the pipe's write end: the thread reads to the end and stops
        thread.join(timeout=5)

    atexit.register(restore)
