"""Backpropagation against central finite differences, in float64."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

from engine import ACTIVATIONS, MLP

OUTPUT_CASES = {"sigmoid": 1, "softmax": 3, "identity": 2}
REGULARIZATIONS = {"none": {}, "l2": {"l2": 0.3}, "l1": {"l1": 0.2}}
DEPTHS = [(), (5,), (4, 3)]


def _data(output: str, rng: np.random.Generator, n: int = 7, d: int = 3):
    X = rng.normal(size=(n, d))
    if output == "sigmoid":
        y = rng.integers(0, 2, n)
    elif output == "softmax":
        y = rng.integers(0, OUTPUT_CASES["softmax"], n)
    else:
        y = rng.normal(size=(n, OUTPUT_CASES["identity"]))
    return X, y


def case_seed(*case: object) -> int:
    """A seed of the case's own, the same in every process (``hash`` of a string is salted
    per process: PYTHONHASHSEED)."""
    return zlib.crc32(repr(case).encode("utf-8"))


def numeric_grads(model: MLP, X, y, eps: float = 1e-6, **reg) -> list[np.ndarray]:
    grads = []
    for p in model.params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + eps
            up = model.loss_and_grads(X, y, **reg)[0]
            p[idx] = old - eps
            down = model.loss_and_grads(X, y, **reg)[0]
            p[idx] = old
            g[idx] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize(
    ("activation", "output", "reg", "hidden"),
    list(itertools.product(sorted(ACTIVATIONS), sorted(OUTPUT_CASES), sorted(REGULARIZATIONS), DEPTHS)),
)
def test_backprop_matches_finite_differences(activation, output, reg, hidden):
    rng = np.random.default_rng(case_seed(activation, output, reg, hidden))
    X, y = _data(output, rng)
    model = MLP(3, hidden, OUTPUT_CASES[output], activation=activation, output=output, seed=1, dtype=np.float64)
    # Non-zero biases, so that their gradients are exercised away from the symmetric start.
    for b in model.biases:
        b[...] = rng.normal(scale=0.5, size=b.shape)
    loss, grads = model.loss_and_grads(X, y, **REGULARIZATIONS[reg])
    assert np.isfinite(loss)
    expected = numeric_grads(model, X, y, **REGULARIZATIONS[reg])
    assert len(grads) == len(model.params) == 2 * (len(hidden) + 1)
    for g, e, p in zip(grads, expected, model.params):
        assert g.shape == p.shape
        rel = np.linalg.norm(g - e) / max(np.linalg.norm(g) + np.linalg.norm(e), 1e-12)
        assert rel < 1e-6, (rel, g, e)


def test_params_are_the_arrays_the_model_computes_with():
    model = MLP(2, (3,), 1, activation="tanh", output="sigmoid", dtype=np.float64)
    X = np.ones((4, 2))
    before = model.decision_function(X).copy()
    model.params[-1] += 1.0  # the output bias, changed in place
    assert np.allclose(model.decision_function(X), before + 1.0)


def test_regularization_skips_biases():
    model = MLP(2, (3,), 1, activation="tanh", output="sigmoid", dtype=np.float64)
    X, y = np.zeros((2, 2)), np.array([0, 1])
    base = model.loss_and_grads(X, y)[0]
    w_sq = sum(float((w**2).sum()) for w in model.weights)
    model.biases[0][...] = 5.0
    moved = model.loss_and_grads(X, y, l2=1.0)[0] - model.loss_and_grads(X, y)[0]
    assert moved == pytest.approx(0.5 * w_sq)
    assert base == pytest.approx(np.log(2.0))  # zero inputs, zero biases: p = 1/2


def test_float32_and_float64_agree():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 3, 20)
    m32 = MLP(3, (6,), 3, activation="sigmoid", output="softmax", seed=4, dtype=np.float32)
    m64 = MLP(3, (6,), 3, activation="sigmoid", output="softmax", seed=4, dtype=np.float64)
    l32, g32 = m32.loss_and_grads(X, y, l2=0.1)
    l64, g64 = m64.loss_and_grads(X, y, l2=0.1)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(g32, g64):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_case_seeds_are_the_same_in_every_process():
    code = "from tests.engine.test_gradients import case_seed; print(case_seed('relu', 'softmax', 'l2', (4, 3)))"
    seeds = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": str(salt)},
        ).stdout.strip()
        for salt in (1, 2)
    }
    assert seeds == {str(case_seed("relu", "softmax", "l2", (4, 3)))}
