"""Input feature families: values, column order, standardization by the training split, errors."""

from __future__ import annotations

import numpy as np
import pytest

from engine import FEATURES, MLP, check_features, from_arrays, load_dataset, train, with_features
from engine.data.features import expand, expanded_names

X = np.array([[1.0, 2.0, -3.0], [0.5, -1.0, 4.0]])


def test_each_family_on_a_small_matrix():
    np.testing.assert_array_equal(expand(X, ["linear"]), X)
    np.testing.assert_array_equal(expand(X, ["squares"]), [[1.0, 4.0, 9.0], [0.25, 1.0, 16.0]])
    # Pairs in order (1,2), (1,3), (2,3).
    np.testing.assert_array_equal(expand(X, ["products"]), [[2.0, -3.0, -6.0], [-0.5, 2.0, -4.0]])
    np.testing.assert_allclose(expand(X, ["sines"]), np.sin(X), rtol=0, atol=0)
    assert expanded_names(("a", "b", "c"), ["products"]) == ("a*b", "a*c", "b*c")


def test_columns_follow_the_table_order_whatever_the_order_asked():
    both = expand(X, ["sines", "linear"])
    np.testing.assert_array_equal(both, np.hstack([X, np.sin(X)]))
    assert check_features(["sines", "products", "linear"]) == ("linear", "products", "sines")
    assert tuple(FEATURES) == ("linear", "squares", "products", "sines")


def test_on_two_dimensional_data_all_families_are_the_playgrounds_seven():
    x = np.array([[2.0, 3.0]])
    full = expand(x, ["linear", "squares", "products", "sines"])
    np.testing.assert_array_equal(full, [[2.0, 3.0, 4.0, 9.0, 6.0, np.sin(2.0), np.sin(3.0)]])
    assert expanded_names(("x1", "x2"), list(FEATURES)) == ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")


def test_expanded_inputs_are_standardized_with_training_statistics_only():
    rng = np.random.default_rng(0)
    raw = rng.normal(3.0, 2.0, (200, 2))
    y = (raw[:, 0] > 3.0).astype(int)
    ds = from_arrays(raw, y, seed=1)
    ex = with_features(ds, ["squares", "sines"])
    assert ex.features == ("squares", "sines") and ex.n_features == 4 and ex.n_raw_features == 2
    assert ex.feature_names == ("x1^2", "x2^2", "sin(x1)", "sin(x2)")
    cols = expand(ds.raw[0], ["squares", "sines"])
    mean, std = cols.mean(axis=0), cols.std(axis=0)
    np.testing.assert_array_equal(ex.input_mean, mean)
    np.testing.assert_array_equal(ex.X_train, (cols - mean) / std)
    # Validation and test rows: the training split's mean and scale, not their own.
    np.testing.assert_array_equal(ex.X_val, (expand(ds.raw[1], ["squares", "sines"]) - mean) / std)
    np.testing.assert_array_equal(ex.X_test, (expand(ds.raw[2], ["squares", "sines"]) - mean) / std)
    assert np.abs(ex.X_val.mean(axis=0)).max() > 1e-3
    # Labels and split unchanged; the raw rows are the split's.
    np.testing.assert_array_equal(ex.y_train, ds.y_train)
    np.testing.assert_allclose(ds.raw[0][:, 0], ds.X_train[:, 0] * ds.input_scale[0] + ds.input_mean[0], rtol=1e-12)


def test_inputs_maps_raw_points_as_the_training_rows_were_mapped():
    ds = with_features(load_dataset("xor", seed=3), list(FEATURES))
    np.testing.assert_array_equal(ds.inputs(ds.raw[0]), ds.X_train)
    np.testing.assert_array_equal(ds.inputs(ds.raw[2]), ds.X_test)
    with pytest.raises(ValueError, match=r"points must be rows of 2 raw features, but got shape \(3,\)"):
        ds.inputs(np.zeros(3))


def test_linear_alone_is_the_dataset_as_loaded():
    ds = load_dataset("circle", seed=0)
    assert with_features(ds, ("linear",)) is ds
    again = with_features(with_features(ds, ["sines"]), ["linear"])
    np.testing.assert_array_equal(again.X_train, ds.X_train)
    np.testing.assert_array_equal(again.X_val, ds.X_val)


def test_expansion_is_deterministic_and_trains():
    a = with_features(load_dataset("spiral", seed=0), ["linear", "sines"])
    b = with_features(load_dataset("spiral", seed=0), ["sines", "linear"])
    np.testing.assert_array_equal(a.X_train, b.X_train)
    model = MLP(a.n_features, (6,), a.n_outputs, activation="tanh", seed=0)
    h = train(model, a, learning_rate=0.1, epochs=3, batch_size=10, seed=0)
    assert h.epochs == 3 and h.divergence is None


@pytest.mark.parametrize(
    "features, message",
    [
        (
            ["cubes"],
            r"'features' must be a list of families from \['linear', 'products', 'sines', 'squares'\], "
            r"but got 'cubes'",
        ),
        (
            [],
            r"'features' must be a non-empty list of families from \['linear', 'products', 'sines', 'squares'\], "
            r"but got \[\]",
        ),
        ("linear", r"must be a non-empty list of families .* but got 'linear'"),
        (["sines", "sines"], r"'features' lists 'sines' twice"),
        ([3], r"but got 3"),
    ],
)
def test_bad_families_are_named(features, message):
    with pytest.raises(ValueError, match=message):
        with_features(load_dataset("circle"), features)


def test_products_on_wide_data_is_refused_with_the_limit():
    with pytest.raises(
        ValueError,
        match=r"'products' takes at most 32 raw features \(496 pairwise products\), "
        r"but dataset 'digits' has 64 \(2016 products\)",
    ):
        with_features(load_dataset("digits"), ["linear", "products"])
    with pytest.raises(ValueError, match=r"'products' needs at least 2 raw features, but dataset 'one' has 1"):
        with_features(from_arrays(np.arange(40.0)[:, None], np.arange(40) % 2, name="one"), ["products"])
    wide = with_features(load_dataset("breast_cancer"), ["products"])  # 30 features: 435 products
    assert wide.n_features == 435 and np.isfinite(wide.X_train).all()
