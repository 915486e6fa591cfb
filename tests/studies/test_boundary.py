"""The report's decision boundary: grid points go through the network's own input features."""

from __future__ import annotations

import numpy as np

from engine import MLP, load_dataset, train, with_features
from studies.reports.figures import boundary_grid, decision_boundary


def test_the_boundary_of_a_network_on_squares_is_a_circle():
    # Logistic regression on x1^2 and x2^2 separates the circle by the radius. It has two
    # inputs, as many as the raw plane: a grid fed to it without the expansion would still
    # run, and draw a straight line.
    ds = with_features(load_dataset("circle", seed=0), ["squares"])
    model = MLP(ds.n_features, (), ds.n_outputs, seed=0)
    h = train(model, ds, learning_rate=0.3, epochs=60, batch_size=10, seed=0)
    assert h.val_accuracy[-1] > 0.95
    gx, gy, p1 = boundary_grid(model, ds, n=60)
    assert gx.shape == gy.shape == p1.shape == (60, 60)
    r = np.hypot(gx, gy)
    assert (p1[r < 1.5] > 0.5).all() and (p1[r > 3.5] < 0.5).all()  # class 1 inside (radius < 2.5)
    # The grid covers the raw training points, with a margin.
    raw = ds.raw[0]
    assert gx.min() < raw[:, 0].min() and gx.max() > raw[:, 0].max()


def test_the_boundary_matches_the_network_on_its_training_points():
    ds = with_features(load_dataset("spiral", seed=1), ["linear", "squares", "products", "sines"])
    model = MLP(ds.n_features, (6,), ds.n_outputs, activation="tanh", seed=1)
    train(model, ds, learning_rate=0.1, epochs=5, batch_size=10, seed=1)
    np.testing.assert_array_equal(model.predict_proba(ds.inputs(ds.raw[0])), model.predict_proba(ds.X_train))
    png = decision_boundary(model, ds)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
