"""The sparsity penalties: values, gradients, proximal operators, serialization, `get`."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from kslim import penalties
from kslim.penalties.lp import _half_threshold
from kslim.penalties.lp import _lp_threshold

# (class, shape parameters, prox steps to check with lam=1). Shape parameters
# are chosen so that every kink and threshold falls inside the checked range.
CASES = [
    (penalties.L1, {}, [0.05, 0.2, 0.45]),
    (penalties.SmoothL1, {"delta": 0.1}, [0.05, 0.2, 0.45]),
    (penalties.Lp, {"p": 0.5}, [0.05, 0.2, 0.45]),
    (penalties.Lp, {"p": 0.75}, [0.05, 0.2, 0.45]),
    (penalties.Lp, {"p": 0.3}, [0.05, 0.2, 0.45]),
    (penalties.TL1, {"a": 1.0}, [0.05, 0.2, 0.45]),  # both threshold branches (switch at 0.25)
    (penalties.TL1, {"a": 0.1}, [0.002, 0.05, 0.45]),
    (penalties.MCP, {"a": 1.0}, [0.05, 0.2, 0.45]),
    (penalties.MCP, {"a": 0.5}, [0.05, 0.2, 0.45]),
    (penalties.SCAD, {"a": 3.7, "knee": 0.1}, [0.05, 0.2]),
    (penalties.SCAD, {"a": 2.5, "knee": 0.4}, [0.05, 0.2, 0.45]),
]
IDS = [f"{cls.__name__}{params}" for cls, params, _ in CASES]

# Kinks: SmoothL1 0.1; MCP 0.5, 1.0; SCAD 0.1, 0.37, 0.4, 1.0. None is sampled.
X = np.array([-1.3, -0.2, -0.05, 0.0, 1e-30, 0.003, 0.05, 0.2, 0.7, 2.0], dtype=np.float32)


def _phi(cls, params, u):
    """The penalties' formulas, written out independently of kslim."""
    if cls is penalties.L1:
        return u
    if cls is penalties.SmoothL1:
        d = params["delta"]
        return np.where(u <= d, u**2 / (2 * d), u - d / 2)
    if cls is penalties.Lp:
        return u ** params["p"]
    if cls is penalties.TL1:
        a = params["a"]
        return (a + 1) * u / (a + u)
    if cls is penalties.MCP:
        a = params["a"]
        return np.where(u <= a, u - u**2 / (2 * a), a / 2)
    if cls is penalties.SCAD:
        a, b = params["a"], params["knee"]
        middle = (2 * a * b * u - u**2 - b**2) / (2 * (a - 1) * b)
        return np.where(u <= b, u, np.where(u <= a * b, middle, (a + 1) * b / 2))
    raise AssertionError(cls)


def _dphi(cls, params, u):
    """Derivatives of `_phi` in u > 0, away from the kinks."""
    if cls is penalties.L1:
        return np.ones_like(u)
    if cls is penalties.SmoothL1:
        d = params["delta"]
        return np.where(u <= d, u / d, 1.0)
    if cls is penalties.Lp:
        p = params["p"]
        return p * u ** (p - 1)
    if cls is penalties.TL1:
        a = params["a"]
        return (a + 1) * a / (a + u) ** 2
    if cls is penalties.MCP:
        a = params["a"]
        return np.where(u <= a, 1 - u / a, 0.0)
    if cls is penalties.SCAD:
        a, b = params["a"], params["knee"]
        return np.where(u <= b, 1.0, np.where(u <= a * b, (a * b - u) / ((a - 1) * b), 0.0))
    raise AssertionError(cls)


@pytest.mark.parametrize("cls, params, steps", CASES, ids=IDS)
def test_value_and_gradient_match_the_formula(cls, params, steps):
    penalty = cls(lam=0.3, **params)
    value = float(ops.convert_to_numpy(penalty(X)))
    expected = 0.3 * np.sum(_phi(cls, params, np.abs(X.astype(np.float64))))
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    assert float(ops.convert_to_numpy(penalty(np.zeros(5, np.float32)))) == 0.0

    # The gradient is finite everywhere, 0 at 0, and the derivative elsewhere.
    x = tf.Variable(X)
    with tf.GradientTape() as tape:
        value = penalty(x)
    grad = tape.gradient(value, x).numpy()
    assert np.all(np.isfinite(grad)), grad
    assert grad[X == 0].tolist() == [0.0]  # subgradient convention sign(0) = 0
    u = np.abs(X.astype(np.float64))
    nonzero = u > 0
    expected = 0.3 * np.sign(X) * _dphi(cls, params, np.where(nonzero, u, 1.0))
    np.testing.assert_allclose(grad[nonzero], expected[nonzero], rtol=1e-5, atol=1e-7)
    zeros = tf.Variable(np.zeros(6, np.float32))
    with tf.GradientTape() as tape:
        value = penalty(zeros)
    np.testing.assert_array_equal(tape.gradient(value, zeros).numpy(), np.zeros(6))


@pytest.mark.parametrize("cls, params, steps", CASES, ids=IDS)
def test_prox_matches_grid_minimisation_and_keeps_shape(cls, params, steps):
    penalty = cls(lam=1.0, **params)
    grid = np.linspace(-2.0, 2.0, 200001)
    grid[100000] = 0.0
    spacing = grid[1] - grid[0]
    grid_phi = _phi(cls, params, np.abs(grid))
    xs = np.linspace(-1.5, 1.5, 61)
    for step in steps:
        z = penalty.prox(xs, step)
        assert z.dtype == np.float64 and z.shape == xs.shape
        for x, zx in zip(xs, z):
            objective = 0.5 * (grid - x) ** 2 + step * grid_phi
            best = np.argmin(objective)
            at_prox = 0.5 * (zx - x) ** 2 + step * _phi(cls, params, np.abs(zx))
            # The prox is at least as good as every grid point ...
            assert at_prox <= objective[best] + 1e-12, (step, x, zx, grid[best])
            # ... and sits at the grid's minimiser unless a far point nearly ties.
            far = np.abs(grid - grid[best]) > 50 * spacing
            if objective[far].min() - objective[best] > 1e-8:
                assert abs(zx - grid[best]) <= spacing, (step, x, zx, grid[best])
    # Any shape in, float64 of that shape out; step 0 is the identity.
    x = np.array([[0.5, -0.01], [0.0, -1.2]], dtype=np.float32)
    np.testing.assert_array_equal(penalty.prox(x, 0.0), x.astype(np.float64))
    z = penalty.prox(x, steps[0])
    assert z.shape == (2, 2) and z.dtype == np.float64
    if cls is not penalties.SmoothL1:
        assert z[0, 1] == 0.0 and z[1, 0] == 0.0  # exact zeros below the threshold


def test_half_thresholding_matches_the_numeric_lp_solver():
    u = np.linspace(0.0, 3.0, 3001)
    # Not eta=1: its threshold, 1.5, is a grid point, where both 0 and 1 are minimisers.
    for eta in [1e-4, 0.05, 0.3, 0.9]:
        np.testing.assert_allclose(_half_threshold(u, eta), _lp_threshold(u, eta, 0.5), atol=1e-9)


def test_mcp_prox_rejects_a_step_beyond_a():
    with pytest.raises(ValueError, match=r"step=2.0, lam=0.5, a=1.0 .*lower the learning rate"):
        penalties.MCP(lam=0.5, a=1.0).prox(np.ones(3), step=2.0)


def test_scad_prox_rejects_a_step_beyond_its_bound():
    with pytest.raises(ValueError, match=r"step \* lam < \(a - 1\) \* knee, got step=0.3, lam=1.0, a=3.7"):
        penalties.SCAD(lam=1.0, a=3.7, knee=0.1).prox(np.ones(3), step=0.3)


@pytest.mark.parametrize("cls, params, steps", CASES, ids=IDS)
def test_serialization_round_trip(cls, params, steps):
    penalty = cls(lam=3e-4, **params)
    restored = keras.regularizers.deserialize(keras.regularizers.serialize(penalty))
    assert type(restored) is cls
    assert restored.get_config() == penalty.get_config() == {"lam": 3e-4, **params}
    layer = keras.layers.BatchNormalization(gamma_regularizer=penalty)
    rebuilt = keras.layers.BatchNormalization.from_config(layer.get_config())
    assert type(rebuilt.gamma_regularizer) is cls
    assert rebuilt.gamma_regularizer.get_config() == penalty.get_config()


@pytest.mark.parametrize(
    "name, cls, defaults",
    [
        ("l1", penalties.L1, {}),
        ("smooth_l1", penalties.SmoothL1, {"delta": 1e-2}),
        ("lp", penalties.Lp, {"p": 0.5}),
        ("tl1", penalties.TL1, {"a": 1.0}),
        ("mcp", penalties.MCP, {"a": 1.0}),
        ("scad", penalties.SCAD, {"a": 3.7, "knee": 0.1}),
    ],
)
def test_get_by_name(name, cls, defaults):
    penalty = penalties.get(name, lam=2e-4)
    assert type(penalty) is cls
    assert penalty.get_config() == {"lam": 2e-4, **defaults}
    assert type(penalties.get(name.upper())) is cls


def test_get_passes_parameters_and_lists_names():
    assert penalties.get("tl1", lam=1e-3, a=2.0).get_config() == {"lam": 1e-3, "a": 2.0}
    assert penalties.names() == ["l1", "lp", "mcp", "scad", "smooth_l1", "tl1"]
    instance = penalties.MCP(lam=1e-3)
    assert penalties.get(instance) is instance


def test_get_unknown_name():
    with pytest.raises(ValueError, match=r"Unknown penalty 'l3'; use one of \['l1', 'lp', 'mcp'"):
        penalties.get("l3")


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (penalties.Lp, {"p": 1.0}, r"Lp got p=1.0; p must be in \(0, 1\)"),
        (penalties.Lp, {"p": 0.0}, r"Lp got p=0.0; p must be in \(0, 1\)"),
        (penalties.SmoothL1, {"delta": 0.0}, r"SmoothL1 got delta=0.0; delta must be a finite number > 0"),
        (penalties.TL1, {"a": 0.0}, r"TL1 got a=0.0; a must be a finite number > 0"),
        (penalties.MCP, {"a": -1.0}, r"MCP got a=-1.0; a must be a finite number > 0"),
        (penalties.SCAD, {"a": 2.0}, r"SCAD got a=2.0; a must be a finite number > 2"),
        (penalties.SCAD, {"knee": float("nan")}, r"SCAD got knee=nan; knee must be a finite number > 0"),
        (penalties.TL1, {"lam": -1.0}, r"TL1 got lam=-1.0; lam must be a finite number >= 0"),
    ],
)
def test_invalid_parameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)
