"""kslim's core on Keras's JAX backend (a fresh process: the backend is fixed at import)."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("jax")


def test_core_prunes_exactly_and_trains_on_jax():
    script = os.path.join(os.path.dirname(__file__), "jax_backend_check.py")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, script], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax backend ok" in result.stdout
