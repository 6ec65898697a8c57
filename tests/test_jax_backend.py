"""kslim's core on Keras's JAX backend (a fresh process: the backend is fixed at import).

The check takes about two minutes, mostly JAX compiling each new shape, and uses one core; it is
started when this module is collected, so it runs beside the rest of the suite, and the test
only collects its result.
"""

import atexit
import importlib.util
import os
import subprocess
import sys

import pytest

_SCRIPT = os.path.join(os.path.dirname(__file__), "jax_backend_check.py")
_CHECK = None
if importlib.util.find_spec("jax") is not None:
    _CHECK = subprocess.Popen(
        [sys.executable, _SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    atexit.register(_CHECK.kill)  # a run that deselects the test leaves no process behind


def test_core_prunes_exactly_and_trains_on_jax():
    if _CHECK is None:
        pytest.skip("jax is not installed")
    try:
        stdout, stderr = _CHECK.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        _CHECK.kill()
        raise
    assert _CHECK.returncode == 0, stderr[-3000:]
    assert "jax backend ok" in stdout
