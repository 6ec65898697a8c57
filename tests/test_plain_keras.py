"""What kslim writes loads in plain Keras: no penalty, no kslim optimizer, unless a layer needs kslim."""

import os
import subprocess
import sys

import keras
import numpy as np

import kslim
from kslim.cli.prune import prune_file
from kslim.cli.train import train_file
from kslim.testing import archs
from kslim.testing.exactness import sparsify

# Loads each file in a process that never imports kslim, with Keras's defaults (compiled, safe mode),
# and prints one line per file: "ok" or the error's innermost message (Keras's last line).
_PLAIN_LOAD = """
import sys
import keras
for path in sys.argv[1:]:
    try:
        keras.saving.load_model(path)
        print("ok")
    except Exception as error:
        print(type(error).__name__, [line for line in str(error).splitlines() if line.strip()][-1][-400:])
"""


def _plain_load(*paths):
    out = subprocess.run([sys.executable, "-c", _PLAIN_LOAD, *map(str, paths)], capture_output=True, text=True,
                         timeout=300, cwd=os.path.dirname(os.path.dirname(__file__)) + "/tests",
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


def _sparse_trained():
    """A VGG with kslim's penalty attached, compiled with kslim's recipe (CoupledSGD) and trained a step."""
    model = sparsify(archs.vgg())
    kslim.attach(model, lam=1e-4)
    kslim.recipe.paper("cifar10").compile(model, steps_per_epoch=1)
    x = np.random.default_rng(0).standard_normal((8, *model.inputs[0].shape[1:])).astype("float32")
    model.fit(x, np.arange(8) % int(model.outputs[0].shape[-1]), epochs=1, verbose=0)
    return model


def test_kslim_outputs_load_in_plain_keras_and_a_users_penalty_file_names_kslim(tmp_path, mnist):
    model = _sparse_trained()
    user = tmp_path / "user.keras"
    model.save(user)  # the user's own save keeps the penalty and the optimizer
    _, slim = prune_file(user, tmp_path / "pruned.keras", kslim.Budget(ratio=0.3), print_fn=None)
    assert slim.losses == [] and model.losses  # the input model keeps its penalty

    x_train, y_train, x_test, y_test = mnist
    np.savez(tmp_path / "mnist.npz", x_train=x_train[:256], y_train=y_train[:256], x_test=x_test[:64],
             y_test=y_test[:64])
    train_file("mlp", tmp_path / "sparse.keras", data=str(tmp_path / "mnist.npz"), lam=1e-4, epochs=1,
               print_fn=None, verbose=0)

    lines = _plain_load(tmp_path / "pruned.keras", tmp_path / "sparse.keras", user)
    assert lines[:2] == ["ok", "ok"], lines
    # A file with kslim's penalty in it: Keras names kslim's penalty, not its own L1 with a bad argument.
    assert "Could not interpret regularizer" in lines[2] and "'registered_name': 'kslim>L1'" in lines[2], lines[2]
    assert "unexpected keyword argument 'lam'" not in lines[2]

    # The penalty file loads with kslim, penalty and all; old files named the class "L1" and still load.
    loaded = keras.saving.load_model(user)
    assert any(isinstance(getattr(layer, "gamma_regularizer", None), kslim.penalties.L1) for layer in loaded.layers)
    old = {"module": "kslim.penalties.l1", "class_name": "L1", "config": {"lam": 1e-4},
           "registered_name": "kslim>L1"}
    assert keras.saving.deserialize_keras_object(old).lam == 1e-4
    assert repr(kslim.penalties.L1(1e-4)) == "L1(lam=0.0001)"
