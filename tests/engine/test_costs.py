"""Cost functions are computed from the logits, stably, without NumPy warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from engine import MLP
from engine.costs import OUTPUTS


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6, 1e30])
def test_binary_cross_entropy_is_finite_for_any_logit(scale):
    z = np.array([[scale], [-scale], [scale], [-scale]])
    y = np.array([1, 0, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost, grad = OUTPUTS["sigmoid"].cost_grad(z.copy(), y, grad=True)
    # Two rows right (cost ~0), two wrong by `scale` (cost ~scale each).
    assert np.isfinite(cost)
    assert cost == pytest.approx((2 * scale + 4 * np.log1p(np.exp(-scale))) / 4)
    s = 1.0 / (1.0 + np.exp(-scale))  # sigmoid(scale); exp(-scale) underflows harmlessly to 0
    expected_grad = np.array([s - 1.0, (1.0 - s) - 0.0, s - 0.0, (1.0 - s) - 1.0]) / 4
    np.testing.assert_allclose(grad[:, 0], expected_grad, atol=1e-15)


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e30])
def test_softmax_cross_entropy_matches_reference_and_stays_finite(scale):
    z = np.array([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]]) * scale
    y = np.array([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cost, grad = OUTPUTS["softmax"].cost_grad(z.copy(), y, grad=True)
    ref_lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    expected = float(np.mean(ref_lse - z[np.arange(2), y]))
    assert cost == pytest.approx(expected, rel=1e-12)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


def test_softmax_with_wide_spread_logits_uses_row_maxima():
    # One row near 0, one near -500: a single shift would underflow the second row.
    z = np.array([[0.0, 1.0], [-500.0, -501.0]], dtype=np.float32)
    cost, _ = OUTPUTS["softmax"].cost_grad(z.copy(), np.array([0, 0]), grad=False)
    expected = np.mean([np.log1p(np.exp(1.0)), np.log1p(np.exp(-1.0))])
    assert cost == pytest.approx(expected, rel=1e-5)


def test_mse():
    z = np.array([[1.0], [3.0]])
    cost, grad = OUTPUTS["identity"].cost_grad(z.copy(), np.array([0.0, 1.0]), grad=True)
    assert cost == pytest.approx((1 + 4) / 2)
    np.testing.assert_allclose(grad[:, 0], [1.0, 2.0])


def test_predictions_and_probabilities():
    m = MLP(2, (), 3, activation="linear", output="softmax", dtype=np.float64)
    X = np.random.default_rng(0).normal(size=(5, 2))
    p = m.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_array_equal(m.predict(X), p.argmax(axis=1))
    b = MLP(2, (), 1, activation="linear", output="sigmoid", dtype=np.float64)
    pb = b.predict_proba(X)
    assert pb.shape == (5, 2)
    np.testing.assert_array_equal(b.predict(X), (pb[:, 1] > 0.5).astype(int))
    r = MLP(2, (), 1, activation="linear", output="identity")
    with pytest.raises(ValueError, match="predict_proba needs a classification output"):
        r.predict_proba(X)


def test_binary_cross_entropy_keeps_its_precision_for_confident_float32_logits():
    # softplus(z) - z*y summed over rows cancels: 1% off here; one softplus per row is not.
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    z = ((2 * y - 1) * rng.uniform(8, 16, 1000)).astype(np.float32)[:, None]
    truth = float(np.logaddexp(0.0, z[:, 0].astype(np.float64) * (1 - 2 * y)).mean())
    cost, _ = OUTPUTS["sigmoid"].cost_grad(z.copy(), y, grad=False)
    assert cost >= 0.0
    assert cost == pytest.approx(truth, rel=1e-5)
