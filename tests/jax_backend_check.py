"""Run by test_jax_backend.py in a fresh process with KERAS_BACKEND=jax.

kslim's core (penalties, attach, callbacks, graph analysis, pruning, profile,
models) is written against keras.ops and NumPy only; this checks it on JAX.
"""


import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import kslim  # noqa: E402
from kslim.testing import archs  # noqa: E402
from kslim.testing.exactness import inputs as _inputs  # noqa: E402
from kslim.testing.exactness import rel_err as _rel_err  # noqa: E402
from kslim.testing.exactness import sparsify  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()
for name, build in archs.CUSTOM.items():
    model = sparsify(build())
    x = _inputs(model)
    slim = kslim.prune(model, threshold=1e-6)
    err = _rel_err(model(x, training=False), slim(x, training=False))
    assert err <= 1e-5 and slim.count_params() < model.count_params(), (name, err)
model = kslim.attach(archs.vgg(), lam=1e-2)
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
x = np.random.default_rng(0).normal(size=(32, 16, 16, 3)).astype("float32")
history = model.fit(x, np.arange(32) % 10, epochs=1, verbose=0, callbacks=[kslim.callbacks.SparsityMonitor()])
assert history.history["penalty"][-1] > 0
for name in kslim.penalties.names():
    grad = jax.grad(lambda v: kslim.penalties.get(name, 1e-3)(v))(np.zeros(3, "float32"))
    assert np.all(grad == 0), (name, grad)
print("jax backend ok")
