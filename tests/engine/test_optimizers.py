"""One implementation of each optimizer, for one network and for a stack: a stacked step is
each row's step alone, bit for bit, with each row's rate and only the unmasked parameters moving."""

from __future__ import annotations

import numpy as np
import pytest

from engine import OPTIMIZERS
from engine.optimizers import Adam, Momentum, make_optimizer

CASES = [
    ("sgd", {}),
    ("momentum", {}),
    ("momentum", {"nesterov": True}),
    ("momentum", {"momentum": 0.5}),
    ("adam", {}),
    ("adam", {"scale_first": True}),
]


def _steps(opt, grads, step_sizes=None):
    for i, g in enumerate(grads):
        if step_sizes is None:
            opt.step(g.copy())
        else:
            opt.step(g.copy(), step_size=step_sizes[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "options"), CASES)
def test_a_stacked_step_is_each_rows_step_alone_bit_for_bit(name, options, dtype):
    rng = np.random.default_rng(0)
    K, n, steps = 5, 41, 4
    params = rng.normal(size=(K, n)).astype(dtype)
    rates = (10.0 ** rng.uniform(-3, 0, size=(K, 1))).astype(dtype)
    mask = (rng.random((K, n)) > 0.25).astype(dtype)
    grads = [rng.normal(scale=3.0, size=(K, n)).astype(dtype) for _ in range(steps)]
    # Adam's step sizes: the rows' rates times their bias corrections, as a stack passes them.
    sizes = [rates * rng.uniform(0.5, 3.0, size=(K, 1)).astype(dtype) for _ in range(steps)] if name == "adam" else None
    stacked = make_optimizer(name, params.copy(), learning_rate=rates, mask=mask, **options)
    _steps(stacked, grads, sizes)
    moved = mask == 1
    for r in range(K):
        alone = make_optimizer(name, params[r].copy(), learning_rate=float(rates[r, 0]), **options)
        _steps(alone, [g[r] for g in grads], None if sizes is None else [s[r] for s in sizes])
        assert stacked.params[r].tobytes() != params[r].tobytes()
        assert np.array_equal(stacked.params[r][moved[r]], alone.params[moved[r]]), r
        assert stacked.params[r][~moved[r]].tobytes() == params[r][~moved[r]].tobytes()  # masked: never moved


def test_every_optimizer_is_in_the_table_and_built_by_name():
    params = np.zeros(3)
    for name, cls in OPTIMIZERS.items():
        assert type(make_optimizer(name, params, learning_rate=0.1)) is cls
    with pytest.raises(
        ValueError,
        match=r"'optimizer' must be one of \['adam', 'momentum', 'sgd'\], "
        r"but got 'rmsprop'",
    ):
        make_optimizer("rmsprop", params, learning_rate=0.1)
    with pytest.raises(ValueError, match=r"'momentum' must be a number in \[0, 1\), but got 1.5"):
        make_optimizer("momentum", params, learning_rate=0.1, momentum=1.5)


def test_nesterov_looks_ahead():
    # One step from rest: plain momentum moves by -rate * g, Nesterov by -(1 + momentum) * rate * g.
    for nesterov, factor in ((False, 1.0), (True, 1.9)):
        opt = Momentum(np.zeros(2), learning_rate=0.1, momentum=0.9, nesterov=nesterov)
        opt.step(np.array([1.0, -2.0]))
        np.testing.assert_allclose(opt.params, [-0.1 * factor, 0.2 * factor])


def test_adam_first_step_moves_each_parameter_by_the_learning_rate():
    # With the bias correction, Adam's first step is -lr * sign(g) (up to epsilon), in either order.
    for scale_first in (False, True):
        opt = Adam(np.zeros(3), learning_rate=0.01, scale_first=scale_first)
        opt.step(np.array([0.5, -4.0, 0.1]))
        np.testing.assert_allclose(opt.params, [-0.01, 0.01, -0.01], rtol=1e-4)
